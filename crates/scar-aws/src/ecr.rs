//! ECR: the repository an image package is pushed to, and the registry login to push it.

use aws_sdk_ecr::types::{Repository, Tag};
use base64::Engine as _;

use crate::error::{NotFoundExt as _, SdkResultExt as _};
use crate::spec_codec::CREATED_BY_TAG;
use crate::{AwsError, AwsProvider};

/// What a client needs to push to a function's ECR repository.
///
/// Its `Debug` output never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct EcrLogin {
    /// The registry host, such as `123456789012.dkr.ecr.us-east-1.amazonaws.com`.
    pub registry: String,
    /// The user name (`AWS`).
    pub username: String,
    /// The registry password: a token valid for 12 hours. Never print it.
    pub password: String,
    /// The repository's URI, `<registry>/<repository>`.
    pub repository_uri: String,
}

impl std::fmt::Debug for EcrLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EcrLogin")
            .field("registry", &self.registry)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("repository_uri", &self.repository_uri)
            .finish()
    }
}

/// The ECR repository of a function's image package: `scar-<function>`, lowercase (ECR
/// names must be).
///
/// ```
/// assert_eq!(scar_aws::ecr_repository_name("My_Func"), "scar-my_func");
/// ```
pub fn ecr_repository_name(function: &str) -> String {
    format!("scar-{}", function.to_lowercase())
}

impl AwsProvider {
    /// Creates the ECR repository `repository` (tagged `createdby=scar`) when it does not
    /// exist, and logs in to its registry, so that the caller can push an image package
    /// to `repository_uri` (with `scar-packager`) before [`init`](AwsProvider::init).
    ///
    /// `repository` is usually [`ecr_repository_name`] of the function.
    pub async fn ecr_login(&self, repository: &str) -> Result<EcrLogin, AwsError> {
        let made = self
            .ecr
            .create_repository()
            .repository_name(repository)
            .tags(
                Tag::builder()
                    .key(CREATED_BY_TAG.0)
                    .value(CREATED_BY_TAG.1)
                    .build()
                    .map_err(|e| AwsError::Input(format!("bad ECR tag: {e}")))?,
            )
            .send()
            .await
            .map_sdk_err("ecr:CreateRepository", repository);
        let existing = match made {
            Ok(out) => out.repository,
            Err(e) if e.has_code(&["RepositoryAlreadyExistsException"]) => {
                self.describe_repository(repository).await?
            }
            Err(e) => return Err(e),
        };
        let repository_uri = existing.and_then(|r| r.repository_uri);
        let token = self
            .ecr
            .get_authorization_token()
            .send()
            .await
            .map_sdk_err("ecr:GetAuthorizationToken", repository)?;
        let data = token.authorization_data().first();
        let registry = data
            .and_then(|d| d.proxy_endpoint())
            .map(|e| {
                e.trim_start_matches("https://")
                    .trim_start_matches("http://")
                    .trim_end_matches('/')
                    .to_string()
            })
            .unwrap_or_default();
        // The token is base64 of "AWS:<password>"; nothing of it goes into messages.
        let decoded = data
            .and_then(|d| d.authorization_token())
            .and_then(|t| base64::engine::general_purpose::STANDARD.decode(t).ok())
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| {
                AwsError::Input(format!(
                    "ecr:GetAuthorizationToken for {repository} answered no usable token"
                ))
            })?;
        let (username, password) = decoded.split_once(':').ok_or_else(|| {
            AwsError::Input(format!(
                "ecr:GetAuthorizationToken for {repository} answered a token without a user name"
            ))
        })?;
        let repository_uri = repository_uri.unwrap_or_else(|| format!("{registry}/{repository}"));
        Ok(EcrLogin {
            registry,
            username: username.to_string(),
            password: password.to_string(),
            repository_uri,
        })
    }

    /// Deletes an ECR repository and its images when it exists and scar created it
    /// (tagged `createdby=scar`).
    pub(crate) async fn delete_ecr_repository(&self, repository: &str) -> Result<(), AwsError> {
        let Some(arn) = self
            .describe_repository(repository)
            .await?
            .and_then(|r| r.repository_arn)
        else {
            return Ok(());
        };
        let tags = self
            .ecr
            .list_tags_for_resource()
            .resource_arn(&arn)
            .send()
            .await
            .map_sdk_err("ecr:ListTagsForResource", repository)?;
        let ours = tags
            .tags()
            .iter()
            .any(|t| t.key() == CREATED_BY_TAG.0 && t.value() == CREATED_BY_TAG.1);
        if !ours {
            return Ok(());
        }
        self.ecr
            .delete_repository()
            .repository_name(repository)
            .force(true)
            .send()
            .await
            .map_sdk_err("ecr:DeleteRepository", repository)
            .optional()?;
        Ok(())
    }

    /// The ECR repository `repository`; `None` when it does not exist.
    async fn describe_repository(&self, repository: &str) -> Result<Option<Repository>, AwsError> {
        let out = self
            .ecr
            .describe_repositories()
            .repository_names(repository)
            .send()
            .await
            .map_sdk_err("ecr:DescribeRepositories", repository)
            .optional()?;
        Ok(out.and_then(|out| out.repositories.unwrap_or_default().into_iter().next()))
    }
}
