//! Leadership through a Kubernetes Lease (`coordination.k8s.io/v1`), as client-go's leader
//! election does it: read the Lease, then create it, renew it or take it over with a `replace`
//! that carries the `resourceVersion` read, so that of two replicas racing for it exactly one
//! write succeeds (the other gets 409 Conflict and stays a standby).
//!
//! * free (no Lease, or no holder): take it;
//! * held by this replica: renew it (`renewTime`);
//! * held by another whose `renewTime + leaseDurationSeconds` is still ahead: stay a standby;
//! * held by another that stopped renewing: take it over, counting a transition.
//!
//! On stop the holder clears `holderIdentity` so a standby need not wait out the duration.
//! `kube-lease-manager` (on kube 5 too) was not used: its takeover of an expired lease is a
//! patch without `resourceVersion`, so two standbys can both believe they lead until the next
//! renewal, and it drives its own timing and backoff where the scheduler ticks.

use chrono::{DateTime, Utc};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};

/// One replica's claim on a named Lease.
pub struct LeaseLock {
    api: Api<Lease>,
    name: String,
    identity: String,
    duration_secs: i32,
    /// The Lease as this replica last wrote it, while it leads.
    held: Option<Lease>,
}

fn micro(t: DateTime<Utc>) -> MicroTime {
    MicroTime(Timestamp::from_microsecond(t.timestamp_micros()).unwrap_or(Timestamp::UNIX_EPOCH))
}

fn chrono_of(t: &MicroTime) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.0.as_microsecond()).unwrap_or(DateTime::UNIX_EPOCH)
}

impl LeaseLock {
    /// `namespace` `None`: the client's default namespace (in a pod, the pod's own).
    pub fn new(
        client: kube::Client,
        namespace: Option<&str>,
        name: &str,
        identity: &str,
        duration: std::time::Duration,
    ) -> LeaseLock {
        let api = match namespace {
            Some(ns) => Api::namespaced(client, ns),
            None => Api::default_namespaced(client),
        };
        LeaseLock {
            api,
            name: name.into(),
            identity: identity.into(),
            duration_secs: i32::try_from(duration.as_secs()).unwrap_or(i32::MAX).max(1),
            held: None,
        }
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Whether this replica leads now (after taking or renewing the Lease as needed).
    pub async fn lead(&mut self) -> bool {
        self.lead_at(Utc::now()).await
    }

    /// [`LeaseLock::lead`] at the instant `now` (tests give a fixed one).
    pub async fn lead_at(&mut self, now: DateTime<Utc>) -> bool {
        match self.try_lead(now).await {
            Ok(leading) => leading,
            Err(e) => {
                // Unsure whether the renewal reached the server: stop sweeping; the Lease
                // lapses by itself if it did not.
                tracing::warn!(error = %e, lease = %self.name, "lease unavailable; not leading");
                self.held = None;
                false
            }
        }
    }

    async fn try_lead(&mut self, now: DateTime<Utc>) -> Result<bool, kube::Error> {
        let Some(current) = self.api.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta { name: Some(self.name.clone()), ..ObjectMeta::default() },
                spec: Some(self.spec(now, now, 0)),
            };
            let written = self.api.create(&PostParams::default(), &lease).await;
            return self.outcome(written);
        };
        let spec = current.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.as_deref().filter(|h| !h.is_empty());
        let transitions = spec.lease_transitions.unwrap_or(0);
        let next_spec = match holder {
            Some(h) if h == self.identity => {
                let acquired = spec.acquire_time.as_ref().map(chrono_of).unwrap_or(now);
                self.spec(acquired, now, transitions)
            }
            Some(h) if fresh(&spec, now) => {
                tracing::debug!(holder = h, lease = %self.name, "lease held by another replica");
                self.held = None;
                return Ok(false);
            }
            _ => self.spec(now, now, transitions + 1),
        };
        let next = Lease { metadata: current.metadata, spec: Some(next_spec) };
        let written = self.api.replace(&self.name, &PostParams::default(), &next).await;
        self.outcome(written)
    }

    fn spec(&self, acquired: DateTime<Utc>, renewed: DateTime<Utc>, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(self.duration_secs),
            acquire_time: Some(micro(acquired)),
            renew_time: Some(micro(renewed)),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    /// A write that conflicts lost the race (someone wrote in between): a standby.
    fn outcome(&mut self, written: Result<Lease, kube::Error>) -> Result<bool, kube::Error> {
        match written {
            Ok(lease) => {
                self.held = Some(lease);
                Ok(true)
            }
            Err(kube::Error::Api(s)) if s.code == 409 => {
                self.held = None;
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Gives the Lease up (on stop): clears the holder, on the version last written, so a
    /// Lease someone else has taken meanwhile is left alone (409).
    pub async fn resign(mut self) {
        let Some(mut lease) = self.held.take() else { return };
        if let Some(spec) = lease.spec.as_mut() {
            spec.holder_identity = None;
            spec.acquire_time = None;
            spec.renew_time = None;
        }
        if let Err(e) = self.api.replace(&self.name, &PostParams::default(), &lease).await {
            tracing::warn!(error = %e, lease = %self.name, "lease not released; it lapses by itself");
        }
    }
}

/// Whether a Lease held by someone is still within its duration at `now`.
fn fresh(spec: &LeaseSpec, now: DateTime<Utc>) -> bool {
    match (spec.renew_time.as_ref(), spec.lease_duration_seconds) {
        (Some(renewed), Some(secs)) => chrono_of(renewed) + chrono::Duration::seconds(i64::from(secs)) > now,
        _ => false,
    }
}

/// This replica's identity in the Lease: the pod's name (or host name) and a per-process
/// suffix, so a restarted pod of the same name starts as a newcomer.
pub fn identity() -> String {
    let host = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "authorization".into());
    let suffix = uuid::Uuid::now_v7().simple().to_string();
    format!("{host}_{}", &suffix[suffix.len() - 8..])
}
