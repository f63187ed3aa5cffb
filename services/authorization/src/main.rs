//! The authorization service binary.

#[tokio::main]
async fn main() {
    platform_runtime::service_main(authorization::SERVICE, &authorization::default_settings(), authorization::run_with)
        .await;
}
