//! The catalog service binary: settings from defaults < `PLATFORM_CONFIG` file < `PLATFORM__…`.

#[tokio::main]
async fn main() {
    platform_runtime::service_main(catalog::SERVICE, &catalog::default_settings(), catalog::run).await;
}
