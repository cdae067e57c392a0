//! The one way these tests make an [`AwsProvider`] against moto: static test credentials
//! given through the configuration (never the environment, which other tests of this
//! process share), moto's region and its IAM role.

use scar_aws::{AwsConfig, AwsProvider, StaticCredentials};
use scar_test_support::moto::{Moto, ACCESS_KEY, REGION};

/// A provider on `moto`.
pub async fn provider(moto: &Moto) -> AwsProvider {
    provider_at(moto, &moto.endpoint()).await
}

/// A provider on moto's role and credentials that sends its requests to `endpoint`, such as
/// a proxy in front of moto.
pub async fn provider_at(moto: &Moto, endpoint: &str) -> AwsProvider {
    let mut config = AwsConfig::new(REGION);
    config.connection.endpoint_url = Some(endpoint.into());
    config.deployment.iam_role = moto.role_arn();
    config.connection.credentials = Some(StaticCredentials {
        access_key_id: ACCESS_KEY.into(),
        secret_access_key: ACCESS_KEY.into(),
        session_token: None,
    });
    AwsProvider::connect(config).await
}
