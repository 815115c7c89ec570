//! Wiring only: the subscriber as deployed (`audit_subscriber::deployed`), then the
//! runtime loop. See README.md beside this file.

use lambda_runtime::{Error, run, service_fn};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_env::init_logs();
    let aws = aws_config::load_from_env().await;
    let subscriber = audit_subscriber::deployed(&aws).await?;
    run(service_fn(|event| {
        audit_subscriber::handle(event, &subscriber)
    }))
    .await
}
