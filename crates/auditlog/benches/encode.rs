//! The subscriber's encode path on one full Lambda batch of ~1 KB events:
//! SQS event JSON -> validated events -> audit records -> sorted -> Arrow -> Parquet (ZSTD)
//! bytes,
//! against the floor of parsing the same bytes with serde_json alone, with the stages
//! on their own (and two bounds: the SQS event only scanned, Arrow only) to show where
//! the time goes.
//!
//! cargo bench -p auditlog-core --bench encode
#![allow(clippy::expect_used)] // generated input: a failure is a bug in the bench

use std::hint::black_box;

use auditlog::fixtures::sqs_event_json;
use auditlog::{AuditRecord, SqsBatch, Tier, encode_parquet, sort_records, to_record_batch};
use chrono::Utc;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use envelope::SchemaRegistry;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn body(r: &auditlog::SqsRecord) -> &str {
    r.body.as_deref().unwrap_or_default()
}

/// The SQS event with each body kept as its raw, still escaped JSON string.
#[derive(serde::Deserialize)]
struct RawSqsBatch<'a> {
    #[serde(rename = "Records", borrow)]
    records: Vec<RawSqsRecord<'a>>,
}

#[derive(serde::Deserialize)]
struct RawSqsRecord<'a> {
    #[serde(borrow)]
    body: &'a serde_json::value::RawValue,
}

const LAMBDA_PAYLOAD: usize = 6 * 1024 * 1024;

/// The subscriber's first half: SQS event JSON to validated audit records.
fn to_records(json: &str, registry: &SchemaRegistry) -> Vec<AuditRecord> {
    let batch: SqsBatch = serde_json::from_str(json).expect("batch");
    let now = Utc::now();
    batch
        .records
        .iter()
        .map(|r| {
            let e = envelope::decode_bus_event(body(r), registry, 1 << 21).expect("valid");
            AuditRecord::from_event(e, now)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let (json, n) = sqs_event_json(2000, 1000, LAMBDA_PAYLOAD);
    let registry = SchemaRegistry::builtin().expect("builtin schemas");
    let mut g = c.benchmark_group("sqs_batch_1kb");
    g.throughput(Throughput::Elements(n as u64));
    g.sample_size(20);

    g.bench_function("serde_json_parse_only", |b| {
        b.iter(|| {
            let batch: SqsBatch = serde_json::from_str(black_box(&json)).expect("batch");
            let mut fields = 0;
            for r in &batch.records {
                let v: serde_json::Value = serde_json::from_str(body(r)).expect("body");
                fields += v.as_object().map_or(0, |o| o.len());
            }
            black_box(fields)
        })
    });

    // The stages of the path, separately: where the time goes.
    g.bench_function("stage_sqs_event_parse", |b| {
        b.iter(|| {
            let batch: SqsBatch = serde_json::from_str(black_box(&json)).expect("batch");
            black_box(batch.records.len())
        })
    });
    // A bound, not a path: bodies left as borrowed raw JSON strings, so serde_json only
    // scans them (no unescaping, no copies). Most of the outer event's cost is this scan.
    g.bench_function("stage_sqs_event_scan_only", |b| {
        b.iter(|| {
            let batch: RawSqsBatch = serde_json::from_str(black_box(&json)).expect("batch");
            black_box(
                batch
                    .records
                    .iter()
                    .map(|r| r.body.get().len())
                    .sum::<usize>(),
            )
        })
    });
    // What the handler read before: the full aws_lambda_events shape of every record.
    g.bench_function("stage_sqs_event_parse_full_shape", |b| {
        b.iter(|| {
            let batch: aws_lambda_events::event::sqs::SqsEvent =
                serde_json::from_str(black_box(&json)).expect("batch");
            black_box(batch.records.len())
        })
    });
    let batch: SqsBatch = serde_json::from_str(&json).expect("batch");
    g.bench_function("stage_decode_validate", |b| {
        b.iter(|| {
            let mut n = 0;
            for r in &batch.records {
                let e = envelope::decode_bus_event(black_box(body(r)), &registry, 1 << 21)
                    .expect("valid");
                n += e.payload_json.len();
            }
            black_box(n)
        })
    });

    g.bench_function("validate_to_records", |b| {
        b.iter(|| black_box(to_records(black_box(&json), &registry).len()))
    });

    g.bench_function("full_encode_path", |b| {
        b.iter(|| {
            let records = to_records(black_box(&json), &registry);
            let bytes = encode_parquet(&records, Tier::Ingest, 1).expect("encode");
            black_box(bytes.len())
        })
    });
    let mut records = to_records(&json, &registry);
    g.bench_function("parquet_encode_only", |b| {
        b.iter(|| {
            let bytes = encode_parquet(black_box(&records), Tier::Ingest, 1).expect("encode");
            black_box(bytes.len())
        })
    });
    // The Arrow part of the above: sorted records copied into Arrow columns.
    sort_records(&mut records, Tier::Ingest);
    let sorted: Vec<&AuditRecord> = records.iter().collect();
    g.bench_function("stage_arrow_build", |b| {
        b.iter(|| {
            let batch = to_record_batch(black_box(&sorted), Tier::Ingest).expect("arrow");
            black_box(batch.num_rows())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
