//! Wiring only: the subscriber as deployed and the queue URLs from the environment,
//! then the runtime loop around `redrive::handle`. See README.md beside this file.

use adapters_aws::SqsMover;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use redrive::{Queues, Request};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_env::init_logs();
    let aws = aws_config::load_from_env().await;
    let subscriber = audit_subscriber::deployed(&aws).await?;
    let queues = Queues {
        mover: SqsMover::new(aws_sdk_sqs::Client::new(&aws)),
        audit_queue_url: lambda_env::var("AUDIT_QUEUE_URL")?,
        audit_dlq_url: lambda_env::var("AUDIT_DLQ_URL")?,
        rule_dlq_url: lambda_env::var("RULE_DLQ_URL")?,
    };
    let (subscriber, queues) = (&subscriber, &queues);
    run(service_fn(move |event: LambdaEvent<Request>| async move {
        Ok::<_, Error>(redrive::handle(event.payload, subscriber, queues).await?)
    }))
    .await
}
