//! The viewer: a page and its script and style, compiled into the binary (no network
//! at build or run time), served with a strict Content-Security-Policy. Embedding sites
//! are allowed by `frame-ancestors` (the deployment's admin-console origins).

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

const INDEX: &str = include_str!("../viewer/index.html");
const SCRIPT: &str = include_str!("../viewer/viewer.js");
const STYLE: &str = include_str!("../viewer/viewer.css");
const EMBED: &str = include_str!("../viewer/embed.js");

/// One of the viewer's files, by the path under `/viewer`.
pub fn asset(path: &str, frame_ancestors: &str) -> Option<Response> {
    let (body, kind) = match path {
        "" | "/" => (INDEX, "text/html; charset=utf-8"),
        "/viewer.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "/viewer.css" => (STYLE, "text/css; charset=utf-8"),
        "/embed.js" => (EMBED, "text/javascript; charset=utf-8"),
        _ => return None,
    };
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    let csp = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self' https:; img-src 'self' data: blob:; base-uri 'none'; form-action 'none'; frame-ancestors {frame_ancestors}"
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Some(r)
}
