//! Retries of transient source errors: exponential backoff with jitter, so a throttled or
//! briefly unreachable system is read on a later try instead of failing the run.

use std::future::Future;
use std::time::Duration;

use tracing::warn;

use crate::config::RetryPolicy;
use crate::error::{Error, Result};

/// Runs `op` until it succeeds, fails with a non-transient error, or has been tried
/// `policy.attempts` times. The final error says how many tries were made.
pub async fn with_retry<T, F, Fut>(policy: &RetryPolicy, what: &str, mut op: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut tries = 1;
    loop {
        match op().await {
            Ok(value) => return Ok(value),
            Err(e) if tries < policy.attempts && e.is_transient() => {
                let wait = backoff(policy, tries, jitter_unit());
                warn!("{what}: {e}; try {} of {} in {} ms", tries + 1, policy.attempts, wait.as_millis());
                tokio::time::sleep(wait).await;
                tries += 1;
            }
            Err(e) if tries > 1 => return Err(Error::Retried { tries, source: Box::new(e) }),
            Err(e) => return Err(e),
        }
    }
}

/// The wait after try `tries` (1-based): min(initial × 2^(tries−1), max) scaled into
/// [½, 1] by `unit` ∈ [0, 1) ("equal jitter": never zero, never all at once).
pub fn backoff(policy: &RetryPolicy, tries: u32, unit: f64) -> Duration {
    let doubled = policy.initial_backoff_ms.saturating_mul(1u64 << (tries - 1).min(32));
    let ceiling = doubled.min(policy.max_backoff_ms) as f64;
    Duration::from_millis((ceiling * (0.5 + 0.5 * unit)) as u64)
}

/// A uniform number in [0, 1) that differs between processes and calls.
fn jitter_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn policy(attempts: u32) -> RetryPolicy {
        RetryPolicy { attempts, initial_backoff_ms: 10, max_backoff_ms: 25 }
    }

    fn refused() -> Error {
        Error::io("s3://bucket/x", std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused"))
    }

    #[test]
    fn backoff_doubles_up_to_the_ceiling_with_jitter_in_the_upper_half() {
        let p = RetryPolicy { attempts: 9, initial_backoff_ms: 100, max_backoff_ms: 1000 };
        let ms = |t, u| backoff(&p, t, u).as_millis();
        assert_eq!((ms(1, 0.0), ms(1, 0.999_999)), (50, 99));
        assert_eq!((ms(2, 0.0), ms(3, 0.0), ms(4, 0.0)), (100, 200, 400));
        assert_eq!((ms(5, 0.0), ms(8, 0.0), ms(40, 0.0)), (500, 500, 500));
        let u = jitter_unit();
        assert!((0.0..1.0).contains(&u));
    }

    #[tokio::test]
    async fn transient_errors_are_retried_until_success() {
        let calls = AtomicU32::new(0);
        let value = with_retry(&policy(4), "list", || async {
            if calls.fetch_add(1, Ordering::SeqCst) < 2 { Err(refused()) } else { Ok(7) }
        })
        .await
        .unwrap();
        assert_eq!((value, calls.load(Ordering::SeqCst)), (7, 3));
    }

    #[tokio::test]
    async fn giving_up_says_how_many_tries() {
        let calls = AtomicU32::new(0);
        let err = with_retry(&policy(3), "list", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(refused())
        })
        .await
        .unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert!(err.to_string().contains("gave up after 3 tries"), "{err}");
    }

    #[tokio::test]
    async fn permanent_errors_are_not_retried() {
        let calls = AtomicU32::new(0);
        let missing = || Error::io("x.csv", std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"));
        let err = with_retry(&policy(5), "read", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(missing())
        })
        .await
        .unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(!err.to_string().contains("gave up"), "{err}");
    }
}
