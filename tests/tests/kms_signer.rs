//! The KMS checkpoint signer: the requests it sends (an Ed25519 key, `ED25519_SHA_512`
//! over the raw note text) and what it makes of KMS's documented answers. moto cannot
//! make Ed25519 keys, so `KmsEd25519` answers as KMS does, signing with a local key; the
//! signed checkpoint must then verify with ed25519-dalek through the signed-note code.

use adapters_aws::KmsCheckpointSigner;
use auditlog_tests::KmsEd25519;
use base64::Engine as _;
use envelope::TenantId;
use transparency::Hash;
use transparency::checkpoint::{self, CheckpointError, CheckpointSigner as _};

async fn config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_kms::config::Credentials::new(
            "k", "s", None, None, "test",
        ))
        .endpoint_url("http://127.0.0.1:9")
        .load()
        .await
}

#[tokio::test]
async fn a_kms_signed_checkpoint_verifies_with_the_public_key_kms_gives() {
    let c = config().await;
    let kms = KmsEd25519::new();
    let signer = KmsCheckpointSigner::new(kms.client(&c), "alias/audit-log", "audit.example")
        .await
        .unwrap();
    // the verifier key customers pin is the KMS key's public half
    let want = signed_note::new_ed25519_verifier_key("audit.example", &kms.key.verifying_key());
    assert_eq!(signer.verifier_key(), want);

    let origin = checkpoint::origin("audit.example", &TenantId::parse("acme").unwrap());
    let note = checkpoint::sign(&signer, &origin, 42, Hash([3u8; 32]))
        .await
        .unwrap();
    let keys = checkpoint::trusted(&[signer.verifier_key().to_owned()]).unwrap();
    let cp = checkpoint::open(&note, &keys, &origin).unwrap();
    assert_eq!(cp.size, 42);

    let requests = kms.requests.lock().unwrap().clone();
    let (target, sign) = &requests[1];
    assert_eq!(target, "TrentService.Sign");
    assert_eq!(sign["KeyId"], "alias/audit-log");
    assert_eq!(
        sign["MessageType"], "RAW",
        "pure Ed25519 over the message itself"
    );
    assert_eq!(sign["SigningAlgorithm"], "ED25519_SHA_512");
    let message = base64::engine::general_purpose::STANDARD
        .decode(sign["Message"].as_str().unwrap())
        .unwrap();
    let text = String::from_utf8(note.clone()).unwrap();
    assert!(
        text.starts_with(std::str::from_utf8(&message).unwrap()),
        "the note text is signed"
    );
    assert!(
        message.len() <= 4096,
        "KMS signs raw messages of up to 4,096 bytes"
    );
}

#[tokio::test]
async fn a_key_that_cannot_sign_ed25519_or_a_wrong_signature_is_refused_clearly() {
    let c = config().await;
    let p256 = KmsEd25519 {
        key_spec: "ECC_NIST_P256",
        ..KmsEd25519::new()
    };
    let e = KmsCheckpointSigner::new(p256.client(&c), "k", "audit.example")
        .await
        .unwrap_err();
    assert!(
        matches!(&e, CheckpointError::Key(why) if why.contains("not ECC_NIST_EDWARDS25519")),
        "{e}"
    );
    let short = KmsEd25519 {
        truncate: 1,
        ..KmsEd25519::new()
    };
    let signer = KmsCheckpointSigner::new(short.client(&c), "k", "audit.example")
        .await
        .unwrap();
    let e = signer.sign(b"x").await.unwrap_err();
    assert!(
        matches!(&e, CheckpointError::Signing(why) if why.contains("63 bytes")),
        "{e}"
    );
    assert!(
        KmsCheckpointSigner::new(KmsEd25519::new().client(&c), "k", "two words")
            .await
            .is_err()
    );
}
