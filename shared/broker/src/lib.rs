//! A Kafka-protocol broker on loopback for tests and the local launcher.
//!
//! It is librdkafka's own mock cluster, served over real TCP: clients connect to its bootstrap
//! address exactly as to Apache Kafka, so services contain nothing specific to it. Its limits
//! (no topic creation through the admin API, nothing kept on disk) are why topics are created
//! here, before services start, as Strimzi's `KafkaTopic` objects do in a cluster.
//!
//! The cluster lives on a thread of its own (its handle is not `Send`) for the life of the
//! process; [`LocalBroker`] talks to that thread.

use std::ffi::{CStr, CString};
use std::sync::mpsc;

use rdkafka::ClientConfig;
use rdkafka::producer::{BaseProducer, Producer as _};

/// Partitions per topic on the local broker.
pub const DEFAULT_PARTITIONS: i32 = 3;

enum Command {
    CreateTopic(String, i32, mpsc::Sender<Result<(), String>>),
}

/// A running local broker.
#[derive(Clone)]
pub struct LocalBroker {
    bootstrap: String,
    commands: mpsc::Sender<Command>,
}

impl LocalBroker {
    /// Starts a one-broker cluster with every platform topic (and its dead-letter topic).
    pub fn start() -> Result<LocalBroker, String> {
        let (boot_tx, boot_rx) = mpsc::channel::<Result<String, String>>();
        let (cmd_tx, cmd_rx) = mpsc::channel::<Command>();
        std::thread::Builder::new()
            .name("local-kafka".into())
            .spawn(move || {
                let producer: BaseProducer =
                    match ClientConfig::new().set("test.mock.num.brokers", "1").set("log_level", "3").create() {
                        Ok(p) => p,
                        Err(e) => {
                            let _ = boot_tx.send(Err(e.to_string()));
                            return;
                        }
                    };
                // SAFETY: the pointer comes from a live client that this thread keeps until the
                // process ends; librdkafka owns the mock cluster and outlives every call below.
                let cluster = unsafe { rdkafka_sys::rd_kafka_handle_mock_cluster(producer.client().native_ptr()) };
                if cluster.is_null() {
                    let _ = boot_tx.send(Err("librdkafka made no mock cluster".into()));
                    return;
                }
                // SAFETY: as above. Groups then balance at once instead of after 3 s.
                unsafe { rdkafka_sys::rd_kafka_mock_group_initial_rebalance_delay_ms(cluster, 0) };
                let create = |topic: &str, partitions: i32| -> Result<(), String> {
                    let name = CString::new(topic).map_err(|e| e.to_string())?;
                    // SAFETY: valid cluster and NUL-terminated name living across the call.
                    let err = unsafe { rdkafka_sys::rd_kafka_mock_topic_create(cluster, name.as_ptr(), partitions, 1) };
                    if err == rdkafka_sys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                        Ok(())
                    } else {
                        Err(format!("creating {topic}: {err:?}"))
                    }
                };
                for topic in platform_events::topics::ALL {
                    if let Err(e) = create(topic, DEFAULT_PARTITIONS)
                        .and_then(|_| create(&platform_events::topics::dead_letter(topic), 1))
                    {
                        let _ = boot_tx.send(Err(e));
                        return;
                    }
                }
                // SAFETY: returns a pointer to a NUL-terminated string owned by the cluster.
                let bootstrap = unsafe { CStr::from_ptr(rdkafka_sys::rd_kafka_mock_cluster_bootstraps(cluster)) }
                    .to_string_lossy()
                    .into_owned();
                let _ = boot_tx.send(Ok(bootstrap));
                while let Ok(cmd) = cmd_rx.recv() {
                    match cmd {
                        Command::CreateTopic(name, partitions, reply) => {
                            let _ = reply.send(create(&name, partitions));
                        }
                    }
                }
                // Every LocalBroker handle is gone: keep serving until the process ends, since
                // clients may still be connected.
                loop {
                    std::thread::park();
                }
            })
            .map_err(|e| e.to_string())?;
        let bootstrap = boot_rx.recv().map_err(|e| e.to_string())??;
        Ok(LocalBroker { bootstrap, commands: cmd_tx })
    }

    /// The bootstrap list clients connect to, e.g. `127.0.0.1:39877`.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// Creates a topic (idempotent). Tests use their own topics to stay independent.
    pub fn create_topic(&self, name: &str, partitions: i32) -> Result<(), String> {
        let (tx, rx) = mpsc::channel();
        self.commands.send(Command::CreateTopic(name.into(), partitions, tx)).map_err(|e| e.to_string())?;
        rx.recv().map_err(|e| e.to_string())?
    }
}
