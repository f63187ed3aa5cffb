//! `platform-broker`: serves the local Kafka-protocol broker with every platform topic and prints
//! `BOOTSTRAP=<host:port>` on stdout. Stops on Ctrl-C or SIGTERM.
#![allow(clippy::print_stdout)]

fn main() {
    let broker = match platform_broker::LocalBroker::start() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("platform-broker: {e}");
            std::process::exit(1);
        }
    };
    println!("BOOTSTRAP={}", broker.bootstrap());
    // Wait until stdin closes or the process is signalled; the launcher keeps stdin open.
    let mut sink = String::new();
    while std::io::stdin().read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
        sink.clear();
    }
}
