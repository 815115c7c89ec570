//! Wiring only: settings from the environment, SDK clients built once, then the HTTP
//! runtime loop around the audit API router. See README.md beside this file.

use audit_api_fn::{Settings, deployed, handle};
use lambda_http::{Error, Request, run, service_fn};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_env::init_logs();
    let aws = aws_config::load_from_env().await;
    let api = deployed(&aws, Settings::from_env()?)?;
    let router = audit_api::router(api);
    let router = &router;
    run(service_fn(move |req: Request| async move {
        Ok::<_, Error>(handle(router, req).await)
    }))
    .await
}
