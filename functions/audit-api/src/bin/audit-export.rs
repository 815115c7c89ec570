//! Wiring only: the export worker, draining the export queue with the same API wiring
//! as the HTTP function. See README.md beside this file.

use audit_api_fn::{Settings, deployed, handle_export_jobs};
use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_env::init_logs();
    let aws = aws_config::load_from_env().await;
    let api = deployed(&aws, Settings::from_env()?)?;
    let api = &api;
    run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, Error>(handle_export_jobs(api, event.payload).await)
    }))
    .await
}
