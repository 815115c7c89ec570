// <audit-log-viewer src="https://audit.example.com/viewer" token-url="/api/audit-viewer-token">
// A web component for the SaaS admin console: it frames the viewer and hands it viewer
// tokens, fetched from the console's own backend (which mints them for the signed-in
// user), at start and whenever the viewer's session runs out.
class AuditLogViewer extends HTMLElement {
  connectedCallback() {
    const src = new URL(this.getAttribute("src"), location.href);
    const frame = document.createElement("iframe");
    frame.title = this.getAttribute("title") || "Audit log";
    frame.style.cssText = "width:100%;height:100%;min-height:32rem;border:0";
    if (this.getAttribute("theme")) src.searchParams.set("theme", this.getAttribute("theme"));
    frame.src = src.toString();
    this.onmessage = async (ev) => {
      if (ev.source !== frame.contentWindow || ev.origin !== src.origin) return;
      if (ev.data && ev.data.type === "auditlog:viewer-token-needed") {
        const res = await fetch(this.getAttribute("token-url"), { credentials: "same-origin" });
        const token = (await res.text()).trim();
        frame.contentWindow.postMessage({ type: "auditlog:viewer-token", token }, src.origin);
      }
    };
    window.addEventListener("message", this.onmessage);
    this.replaceChildren(frame);
  }
  disconnectedCallback() { window.removeEventListener("message", this.onmessage); }
}
customElements.define("audit-log-viewer", AuditLogViewer);
