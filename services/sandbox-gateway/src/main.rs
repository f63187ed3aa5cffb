//! The sandbox gateway binary: settings from defaults < `PLATFORM_CONFIG` file < `PLATFORM__…`.

#[tokio::main]
async fn main() {
    platform_runtime::service_main(
        sandbox_gateway::SERVICE,
        &sandbox_gateway::default_settings(),
        sandbox_gateway::run_with,
    )
    .await;
}
