//! `/healthz` answers while the process serves; `/readyz` answers 200 only while every
//! dependency check (database, broker) passes, and names the failing ones otherwise.

use std::sync::Arc;
use std::time::Duration;

use actix_web::{HttpResponse, web};
use futures::future::BoxFuture;

/// One named dependency check.
pub type Check = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

#[derive(Clone, Default)]
pub struct Readiness {
    checks: Vec<(&'static str, Check)>,
}

impl Readiness {
    pub fn with(mut self, name: &'static str, check: Check) -> Self {
        self.checks.push((name, check));
        self
    }

    /// Runs every check concurrently, each within `timeout`.
    pub async fn run(&self, timeout: Duration) -> Vec<(&'static str, Result<(), String>)> {
        let futs = self.checks.iter().map(|(name, check)| {
            let fut = check();
            async move {
                let r = match tokio_timeout(timeout, fut).await {
                    Some(r) => r,
                    None => Err(format!("no answer within {} ms", timeout.as_millis())),
                };
                (*name, r)
            }
        });
        futures::future::join_all(futs).await
    }
}

async fn tokio_timeout<T>(d: Duration, f: BoxFuture<'static, T>) -> Option<T> {
    let sleep = actix_web::rt::time::sleep(d);
    futures::pin_mut!(sleep);
    match futures::future::select(f, sleep).await {
        futures::future::Either::Left((v, _)) => Some(v),
        futures::future::Either::Right(_) => None,
    }
}

/// Mounts `/healthz` and `/readyz`.
pub fn health_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(|| async { HttpResponse::Ok().json(serde_json::json!({"status": "ok"})) }))
        .route(
            "/readyz",
            web::get().to(|r: web::Data<Readiness>| async move {
                let results = r.run(Duration::from_secs(2)).await;
                let ok = results.iter().all(|(_, r)| r.is_ok());
                let body: serde_json::Map<String, serde_json::Value> = results
                    .into_iter()
                    .map(|(name, r)| {
                        let v = match r {
                            Ok(()) => serde_json::json!("ok"),
                            Err(e) => serde_json::json!({ "error": e }),
                        };
                        (name.to_string(), v)
                    })
                    .collect();
                let body = serde_json::json!({ "status": if ok { "ready" } else { "not-ready" }, "checks": body });
                if ok { HttpResponse::Ok().json(body) } else { HttpResponse::ServiceUnavailable().json(body) }
            }),
        );
}
