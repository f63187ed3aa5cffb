//! Jobs on Kubernetes: one namespace per workspace, `sbx-<grant>`, holding
//!
//! * NetworkPolicy `default-deny-egress`: the pods reach only the workspace's database (an
//!   `ipBlock` /32 when the host is an address, else the configured selectors) on its TCP port,
//!   and DNS in `kube-system` — no raw data leaves the domain through a job (ZJK-19);
//! * ResourceQuota `workspace-quota` from the backend's settings;
//! * Secret `workspace-credentials` (`PGHOST`, `PGPORT`, `PGDATABASE`, `PGUSER`, `PGPASSWORD`);
//! * the Jobs: an approved image only, no service account token, non-root, read-only root
//!   filesystem, no privilege escalation, every capability dropped, the job's resources, its
//!   deadline, no retries, the credentials from the Secret.
//!
//! Provisioning is server-side apply by the field manager `sandbox-gateway`, so it is idempotent
//! and corrects drift; teardown deletes the namespace, and with it everything in it.

use std::collections::BTreeMap;
use std::net::IpAddr;

use futures::future::BoxFuture;
use k8s_openapi::ByteString;
use k8s_openapi::api::batch::v1::{Job, JobSpec as K8sJobSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, EmptyDirVolumeSource, EnvFromSource, Namespace, PodSecurityContext, PodSpec,
    PodTemplateSpec, ResourceQuota, ResourceQuotaSpec, ResourceRequirements, SeccompProfile, Secret, SecretEnvSource,
    SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde::Deserialize;
use uuid::Uuid;

use super::{ApprovedImages, Backend, JobError, JobRef, JobSpec, JobStatus, WorkspaceTarget, validate};

/// The field manager of every apply, and the value of the managed-by label.
pub const MANAGER: &str = "sandbox-gateway";
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const GRANT_LABEL: &str = "platform/grant";
pub const NETWORK_POLICY: &str = "default-deny-egress";
pub const QUOTA: &str = "workspace-quota";
pub const CREDENTIALS_SECRET: &str = "workspace-credentials";
/// Jobs write only here (an emptyDir), the root filesystem being read-only.
const SCRATCH: &str = "/tmp";

/// A workspace's namespace.
pub fn namespace_name(grant: Uuid) -> String {
    format!("sbx-{}", grant.simple())
}

/// Selects the database's pods when its host is a name rather than an address. (An `ipBlock`
/// suits a database outside the cluster: policies see pod addresses after a Service's NAT.)
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSelector {
    pub namespace_labels: BTreeMap<String, String>,
    pub pod_labels: BTreeMap<String, String>,
}

/// The hard limits of each workspace namespace.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaSettings {
    pub cpu: String,
    pub memory: String,
    pub pods: u32,
}

impl Default for QuotaSettings {
    fn default() -> Self {
        QuotaSettings { cpu: "2".into(), memory: "4Gi".into(), pods: 4 }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KubeSettings {
    /// Exact image references jobs may run (ZJK-19).
    pub approved_images: Vec<String>,
    pub quota: QuotaSettings,
    /// Used when the database host is not an IP address.
    pub database_selector: Option<DatabaseSelector>,
    /// Where cluster DNS runs.
    pub dns_namespace: String,
    /// The uid jobs run as (never 0).
    pub run_as_user: i64,
}

impl Default for KubeSettings {
    fn default() -> Self {
        KubeSettings {
            approved_images: Vec::new(),
            quota: QuotaSettings::default(),
            database_selector: None,
            dns_namespace: "kube-system".into(),
            run_as_user: 65532,
        }
    }
}

fn labels(grant: Uuid) -> BTreeMap<String, String> {
    BTreeMap::from([(MANAGED_BY_LABEL.to_string(), MANAGER.to_string()), (GRANT_LABEL.to_string(), grant.to_string())])
}

fn meta(name: &str, grant: Uuid) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: Some(namespace_name(grant)),
        labels: Some(labels(grant)),
        ..ObjectMeta::default()
    }
}

fn select(labels: &BTreeMap<String, String>) -> LabelSelector {
    LabelSelector { match_labels: Some(labels.clone()), ..LabelSelector::default() }
}

fn port(protocol: &str, port: u16) -> NetworkPolicyPort {
    NetworkPolicyPort {
        port: Some(IntOrString::Int(i32::from(port))),
        protocol: Some(protocol.to_string()),
        ..NetworkPolicyPort::default()
    }
}

/// The workspace's namespace, held to the `restricted` Pod Security Standard.
pub fn namespace(grant: Uuid) -> Namespace {
    let mut labels = labels(grant);
    labels.insert("pod-security.kubernetes.io/enforce".into(), "restricted".into());
    Namespace {
        metadata: ObjectMeta { name: Some(namespace_name(grant)), labels: Some(labels), ..ObjectMeta::default() },
        ..Namespace::default()
    }
}

/// Default-deny egress: only the database endpoint (TCP) and cluster DNS (UDP and TCP 53).
pub fn network_policy(ws: &WorkspaceTarget, settings: &KubeSettings) -> Result<NetworkPolicy, JobError> {
    let database = match ws.database_host.parse::<IpAddr>() {
        Ok(ip) => {
            let bits = if ip.is_ipv4() { 32 } else { 128 };
            NetworkPolicyPeer {
                ip_block: Some(IPBlock { cidr: format!("{ip}/{bits}"), except: None }),
                ..NetworkPolicyPeer::default()
            }
        }
        Err(_) => {
            let sel = settings.database_selector.as_ref().ok_or_else(|| {
                JobError::Config(format!(
                    "database host `{}` is not an IP address and no database_selector is set",
                    ws.database_host
                ))
            })?;
            NetworkPolicyPeer {
                namespace_selector: Some(select(&sel.namespace_labels)),
                pod_selector: Some(select(&sel.pod_labels)),
                ..NetworkPolicyPeer::default()
            }
        }
    };
    let dns = NetworkPolicyPeer {
        namespace_selector: Some(select(&BTreeMap::from([(
            "kubernetes.io/metadata.name".to_string(),
            settings.dns_namespace.clone(),
        )]))),
        ..NetworkPolicyPeer::default()
    };
    Ok(NetworkPolicy {
        metadata: meta(NETWORK_POLICY, ws.grant_id),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector::default()),
            policy_types: Some(vec!["Egress".into()]),
            egress: Some(vec![
                NetworkPolicyEgressRule { to: Some(vec![database]), ports: Some(vec![port("TCP", ws.database_port)]) },
                NetworkPolicyEgressRule { to: Some(vec![dns]), ports: Some(vec![port("UDP", 53), port("TCP", 53)]) },
            ]),
            ingress: None,
        }),
    })
}

/// The namespace's hard limits: requests and limits of CPU and memory, and the pod count.
pub fn resource_quota(grant: Uuid, quota: &QuotaSettings) -> ResourceQuota {
    let hard = BTreeMap::from([
        ("limits.cpu".to_string(), Quantity(quota.cpu.clone())),
        ("limits.memory".to_string(), Quantity(quota.memory.clone())),
        ("pods".to_string(), Quantity(quota.pods.to_string())),
        ("requests.cpu".to_string(), Quantity(quota.cpu.clone())),
        ("requests.memory".to_string(), Quantity(quota.memory.clone())),
    ]);
    ResourceQuota {
        metadata: meta(QUOTA, grant),
        spec: Some(ResourceQuotaSpec { hard: Some(hard), ..ResourceQuotaSpec::default() }),
        ..ResourceQuota::default()
    }
}

/// The workspace's database login, as libpq's environment variables.
pub fn credentials_secret(ws: &WorkspaceTarget) -> Secret {
    let data = [
        ("PGDATABASE", ws.database_name.clone()),
        ("PGHOST", ws.database_host.clone()),
        ("PGPASSWORD", ws.credentials.password.clone()),
        ("PGPORT", ws.database_port.to_string()),
        ("PGUSER", ws.credentials.user.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), ByteString(v.into_bytes())))
    .collect();
    Secret {
        metadata: meta(CREDENTIALS_SECRET, ws.grant_id),
        data: Some(data),
        type_: Some("Opaque".into()),
        ..Secret::default()
    }
}

/// The Job for `spec`, named `name`. The image is not checked here: [`KubeBackend::submit`] does.
pub fn job(name: &str, spec: &JobSpec, settings: &KubeSettings) -> Job {
    let size = BTreeMap::from([
        ("cpu".to_string(), Quantity(spec.cpu.clone())),
        ("memory".to_string(), Quantity(spec.memory.clone())),
    ]);
    let mut pod_labels = labels(spec.grant_id);
    pod_labels.insert("platform/job".into(), name.to_string());
    let container = Container {
        name: "job".into(),
        image: Some(spec.image.clone()),
        args: Some(spec.args.clone()),
        env_from: Some(vec![EnvFromSource {
            secret_ref: Some(SecretEnvSource { name: CREDENTIALS_SECRET.into(), optional: Some(false) }),
            ..EnvFromSource::default()
        }]),
        resources: Some(ResourceRequirements {
            limits: Some(size.clone()),
            requests: Some(size),
            ..ResourceRequirements::default()
        }),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities { drop: Some(vec!["ALL".into()]), add: None }),
            privileged: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(vec![VolumeMount {
            name: "scratch".into(),
            mount_path: SCRATCH.into(),
            ..VolumeMount::default()
        }]),
        ..Container::default()
    };
    let pod = PodSpec {
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        restart_policy: Some("Never".into()),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(settings.run_as_user),
            seccomp_profile: Some(SeccompProfile { type_: "RuntimeDefault".into(), localhost_profile: None }),
            ..PodSecurityContext::default()
        }),
        containers: vec![container],
        volumes: Some(vec![Volume {
            name: "scratch".into(),
            empty_dir: Some(EmptyDirVolumeSource { size_limit: Some(Quantity("64Mi".into())), medium: None }),
            ..Volume::default()
        }]),
        ..PodSpec::default()
    };
    Job {
        metadata: meta(name, spec.grant_id),
        spec: Some(K8sJobSpec {
            active_deadline_seconds: Some(i64::try_from(spec.timeout_secs).unwrap_or(i64::MAX)),
            backoff_limit: Some(0),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta { labels: Some(pod_labels), ..ObjectMeta::default() }),
                spec: Some(pod),
            },
            ..K8sJobSpec::default()
        }),
        ..Job::default()
    }
}

/// Where a Job is, from its conditions (authoritative) and counters.
pub fn job_status(job: &Job) -> JobStatus {
    let Some(status) = &job.status else { return JobStatus::Pending };
    let condition = |t: &str| status.conditions.iter().flatten().find(|c| c.type_ == t && c.status == "True");
    if condition("Complete").is_some() {
        return JobStatus::Succeeded { output: None };
    }
    if let Some(c) = condition("Failed") {
        let reason = [c.reason.as_deref(), c.message.as_deref()].into_iter().flatten().collect::<Vec<_>>().join(": ");
        return JobStatus::Failed { reason };
    }
    if status.active.unwrap_or(0) > 0 { JobStatus::Running } else { JobStatus::Pending }
}

/// The Kubernetes backend.
#[derive(Clone)]
pub struct KubeBackend {
    client: kube::Client,
    settings: KubeSettings,
    images: ApprovedImages,
}

impl KubeBackend {
    pub fn new(client: kube::Client, settings: KubeSettings) -> Self {
        let images = ApprovedImages::new(settings.approved_images.iter().cloned());
        KubeBackend { client, settings, images }
    }

    pub fn settings(&self) -> &KubeSettings {
        &self.settings
    }

    fn namespaced<K>(&self, grant: Uuid) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &namespace_name(grant))
    }

    async fn apply<K>(api: &Api<K>, object: &K) -> Result<(), JobError>
    where
        K: kube::Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        let name = object.meta().name.clone().unwrap_or_default();
        api.patch(&name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(object)).await?;
        Ok(())
    }

    async fn provision_all(&self, ws: &WorkspaceTarget) -> Result<(), JobError> {
        let policy = network_policy(ws, &self.settings)?;
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        Self::apply(&namespaces, &namespace(ws.grant_id)).await?;
        // The deny policy goes in before anything that can run.
        Self::apply(&self.namespaced(ws.grant_id), &policy).await?;
        Self::apply(&self.namespaced(ws.grant_id), &resource_quota(ws.grant_id, &self.settings.quota)).await?;
        Self::apply(&self.namespaced(ws.grant_id), &credentials_secret(ws)).await?;
        tracing::info!(grant = %ws.grant_id, namespace = %namespace_name(ws.grant_id), "workspace provisioned");
        Ok(())
    }

    async fn submit_job(&self, ws: &WorkspaceTarget, spec: &JobSpec) -> Result<JobRef, JobError> {
        validate(ws, spec, &self.images)?;
        let name = format!("job-{}", Uuid::now_v7().simple());
        let jobs: Api<Job> = self.namespaced(ws.grant_id);
        let pp = PostParams { field_manager: Some(MANAGER.into()), ..PostParams::default() };
        jobs.create(&pp, &job(&name, spec, &self.settings)).await?;
        tracing::info!(grant = %ws.grant_id, job = %name, image = %spec.image, "job submitted");
        Ok(JobRef { grant_id: ws.grant_id, name })
    }

    async fn job_status(&self, ws: &WorkspaceTarget, job: &JobRef) -> Result<JobStatus, JobError> {
        let jobs: Api<Job> = self.namespaced(ws.grant_id);
        match jobs.get_opt(&job.name).await? {
            Some(j) => Ok(job_status(&j)),
            None => Err(JobError::JobNotFound(job.name.clone())),
        }
    }

    async fn delete_namespace(&self, ws: &WorkspaceTarget) -> Result<(), JobError> {
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        let name = namespace_name(ws.grant_id);
        match namespaces.delete(&name, &DeleteParams::background()).await {
            Ok(_) => {}
            // Gone already, or being deleted (409 while it empties).
            Err(kube::Error::Api(s)) if s.is_not_found() || s.is_conflict() => {}
            Err(e) => return Err(e.into()),
        }
        tracing::info!(grant = %ws.grant_id, namespace = %name, "workspace torn down");
        Ok(())
    }

    /// The grants whose namespaces carry the managed-by label and are not being deleted.
    pub async fn list_managed(&self) -> Result<Vec<Uuid>, JobError> {
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        let lp = ListParams::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGER}"));
        let list = namespaces.list(&lp).await?;
        Ok(list
            .items
            .iter()
            .filter(|ns| ns.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Terminating"))
            .filter_map(|ns| ns.metadata.labels.as_ref()?.get(GRANT_LABEL)?.parse().ok())
            .collect())
    }
}

impl Backend for KubeBackend {
    fn provision<'a>(&'a self, ws: &'a WorkspaceTarget) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(self.provision_all(ws))
    }

    fn submit<'a>(&'a self, ws: &'a WorkspaceTarget, spec: &'a JobSpec) -> BoxFuture<'a, Result<JobRef, JobError>> {
        Box::pin(self.submit_job(ws, spec))
    }

    fn status<'a>(&'a self, ws: &'a WorkspaceTarget, job: &'a JobRef) -> BoxFuture<'a, Result<JobStatus, JobError>> {
        Box::pin(self.job_status(ws, job))
    }

    fn teardown<'a>(&'a self, ws: &'a WorkspaceTarget) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(self.delete_namespace(ws))
    }

    fn list_managed(&self) -> BoxFuture<'_, Result<Vec<Uuid>, JobError>> {
        Box::pin(KubeBackend::list_managed(self))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::jobs::tests::{spec, target};
    use serde_json::json;

    fn grant() -> Uuid {
        Uuid::parse_str("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b").unwrap()
    }

    fn ws(host: &str) -> WorkspaceTarget {
        WorkspaceTarget { database_host: host.into(), ..target(grant()) }
    }

    fn to_json<T: serde::Serialize>(v: &T) -> serde_json::Value {
        serde_json::to_value(v).unwrap()
    }

    #[test]
    fn jobs_namespace_is_labelled_and_restricted() {
        let ns = to_json(&namespace(grant()));
        assert_eq!(
            ns,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {
            "name": "sbx-0190a1b2c3d47e5f8a9b0c1d2e3f4a5b",
            "labels": {
                "app.kubernetes.io/managed-by": "sandbox-gateway",
                "platform/grant": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
                "pod-security.kubernetes.io/enforce": "restricted"
            }}})
        );
    }

    #[test]
    fn jobs_policy_allows_an_ip_database_as_a_slash_32_and_dns_only() {
        let np = to_json(&network_policy(&ws("10.20.0.7"), &KubeSettings::default()).unwrap());
        assert_eq!(np["spec"]["policyTypes"], json!(["Egress"]));
        assert_eq!(np["spec"]["podSelector"], json!({}));
        assert_eq!(
            np["spec"]["egress"],
            json!([
                {"to": [{"ipBlock": {"cidr": "10.20.0.7/32"}}], "ports": [{"port": 5432, "protocol": "TCP"}]},
                {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}],
                 "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}
            ])
        );
        let v6 = to_json(&network_policy(&ws("fd00::7"), &KubeSettings::default()).unwrap());
        assert_eq!(v6["spec"]["egress"][0]["to"][0]["ipBlock"]["cidr"], "fd00::7/128");
    }

    #[test]
    fn jobs_policy_for_a_named_database_uses_the_configured_selectors_or_refuses() {
        let e = network_policy(&ws("pg.data.svc"), &KubeSettings::default()).unwrap_err();
        assert!(matches!(e, JobError::Config(m) if m.contains("pg.data.svc")));
        let settings = KubeSettings {
            database_selector: Some(DatabaseSelector {
                namespace_labels: BTreeMap::from([("kubernetes.io/metadata.name".into(), "data".into())]),
                pod_labels: BTreeMap::from([("app".into(), "postgres".into())]),
            }),
            ..KubeSettings::default()
        };
        let np = to_json(&network_policy(&ws("pg.data.svc"), &settings).unwrap());
        assert_eq!(
            np["spec"]["egress"][0]["to"],
            json!([{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "data"}},
                    "podSelector": {"matchLabels": {"app": "postgres"}}}])
        );
    }

    #[test]
    fn jobs_quota_takes_the_settings() {
        let q = to_json(&resource_quota(grant(), &QuotaSettings { cpu: "4".into(), memory: "8Gi".into(), pods: 3 }));
        assert_eq!(
            q["spec"],
            json!({"hard": {"limits.cpu": "4", "limits.memory": "8Gi", "pods": "3", "requests.cpu": "4", "requests.memory": "8Gi"}})
        );
        assert_eq!(q["metadata"]["namespace"], "sbx-0190a1b2c3d47e5f8a9b0c1d2e3f4a5b");
    }

    #[test]
    fn jobs_secret_holds_the_libpq_variables() {
        let s = credentials_secret(&ws("10.20.0.7"));
        let data = s.data.unwrap();
        let text: BTreeMap<_, _> =
            data.iter().map(|(k, v)| (k.as_str(), String::from_utf8(v.0.clone()).unwrap())).collect();
        assert_eq!(
            text,
            BTreeMap::from([
                ("PGDATABASE", "sandbox".to_string()),
                ("PGHOST", "10.20.0.7".to_string()),
                ("PGPASSWORD", "s3cret".to_string()),
                ("PGPORT", "5432".to_string()),
                ("PGUSER", "ws_login".to_string()),
            ])
        );
    }

    #[test]
    fn jobs_job_is_locked_down() {
        let j = to_json(&job("job-1", &spec(grant()), &KubeSettings::default()));
        let spec = &j["spec"];
        assert_eq!(spec["backoffLimit"], 0);
        assert_eq!(spec["activeDeadlineSeconds"], 600);
        let pod = &spec["template"]["spec"];
        assert_eq!(pod["automountServiceAccountToken"], false);
        assert_eq!(pod["restartPolicy"], "Never");
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        let c = &pod["containers"][0];
        assert_eq!(c["image"], "registry.local/analysis@sha256:ab");
        assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
        assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
        assert_eq!(c["envFrom"], json!([{"secretRef": {"name": "workspace-credentials", "optional": false}}]));
        assert_eq!(c["resources"]["limits"], json!({"cpu": "500m", "memory": "256Mi"}));
    }

    #[test]
    fn jobs_status_from_conditions_and_counters() {
        let with = |status: serde_json::Value| -> Job {
            serde_json::from_value(json!({"metadata": {"name": "j"}, "status": status})).unwrap()
        };
        assert_eq!(job_status(&with(json!({}))), JobStatus::Pending);
        assert_eq!(job_status(&with(json!({"active": 1}))), JobStatus::Running);
        assert_eq!(
            job_status(&with(json!({"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}))),
            JobStatus::Succeeded { output: None }
        );
        assert_eq!(
            job_status(&with(json!({"failed": 1, "conditions": [
                {"type": "Failed", "status": "True", "reason": "DeadlineExceeded", "message": "too slow"}]}))),
            JobStatus::Failed { reason: "DeadlineExceeded: too slow".into() }
        );
    }
}
