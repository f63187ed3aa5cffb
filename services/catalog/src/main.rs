//! The catalog service binary: settings from defaults < `PLATFORM_CONFIG` file < `PLATFORM__…`.

#[tokio::main]
async fn main() {
    let settings: platform_settings::CommonSettings =
        match platform_settings::load(&catalog::default_settings(), &platform_settings::Sources::default()) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("catalog: {e}");
                std::process::exit(2);
            }
        };
    let _telemetry = match platform_telemetry::init(catalog::SERVICE, &settings.telemetry, None) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("catalog: {e}");
            std::process::exit(2);
        }
    };
    let running = match catalog::run(settings).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "catalog failed to start");
            std::process::exit(1);
        }
    };
    shutdown_signal().await;
    tracing::info!("stopping");
    running.stop().await;
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
