//! S3 triggers: the permission S3 needs to invoke a function, and the bucket notification
//! (one per input folder, filtered on its prefix) merged into the bucket's others; and
//! their removal, which leaves every other entry of the bucket alone.

use aws_sdk_s3::operation::get_bucket_notification_configuration::GetBucketNotificationConfigurationOutput;
use aws_sdk_s3::types::{
    FilterRule, FilterRuleName, LambdaFunctionConfiguration, NotificationConfiguration,
    NotificationConfigurationFilter, S3KeyFilter,
};
use scar_core::provider::SurfaceError;
use scar_core::InputSpec;

use crate::deploy::Created;
use crate::error::SdkResultExt as _;
use crate::{AwsError, AwsProvider};

impl AwsProvider {
    /// An input folder: its bucket and folder, S3's permission to invoke (once per
    /// bucket), and an `s3:ObjectCreated:*` notification filtered on the folder's prefix,
    /// added to the bucket's other notifications. A folder that overlaps another
    /// function's is refused, as S3 refuses overlapping notifications.
    pub(crate) async fn connect_input(
        &self,
        name: &str,
        function_arn: &str,
        input: &InputSpec,
        index: usize,
        permitted: &mut Vec<String>,
        created: &mut Vec<Created>,
    ) -> Result<(), AwsError> {
        let bucket = input.bucket.as_str();
        if self.ensure_bucket(bucket).await? {
            created.push(Created::Bucket(bucket.into()));
        }
        self.ensure_folder(bucket, &input.folder).await?;
        if !permitted.iter().any(|b| b == bucket) {
            let statement_id = self.permit_bucket(name, function_arn, bucket).await?;
            created.push(Created::Permission { statement_id });
            permitted.push(bucket.to_string());
        }
        let entry = notification_entry(name, function_arn, input, index)?;
        self.update_notifications(bucket, |lambdas| {
            lambdas.retain(|c| c.id() != entry.id());
            if let Some(taken) = lambdas
                .iter()
                .find_map(|other| taken_by(other, name, input))
            {
                return Err(taken);
            }
            lambdas.push(entry);
            Ok(())
        })
        .await?;
        created.push(Created::Notification {
            bucket: bucket.into(),
        });
        Ok(())
    }

    /// S3's permission to invoke function `name` for objects of `bucket`; its statement
    /// id.
    async fn permit_bucket(
        &self,
        name: &str,
        function_arn: &str,
        bucket: &str,
    ) -> Result<String, AwsError> {
        let statement_id = permission_id(bucket);
        let mut permission = self
            .lambda
            .add_permission()
            .function_name(name)
            .statement_id(&statement_id)
            .action("lambda:InvokeFunction")
            .principal("s3.amazonaws.com")
            .source_arn(format!("arn:aws:s3:::{bucket}"));
        // Bucket ARNs carry no account: pin the account so that a bucket of the same name
        // in another account cannot invoke the function.
        if let Some(account) = function_arn.split(':').nth(4).filter(|a| !a.is_empty()) {
            permission = permission.source_account(account);
        }
        permission
            .send()
            .await
            .map_sdk_err("lambda:AddPermission", name)?;
        Ok(statement_id)
    }

    /// Reads the bucket's notification configuration, lets `change` edit its Lambda
    /// entries, and writes it back with every other entry (topics, queues, EventBridge)
    /// as it was. Nothing is written when `change` left the entries as they were.
    async fn update_notifications(
        &self,
        bucket: &str,
        change: impl FnOnce(&mut Vec<LambdaFunctionConfiguration>) -> Result<(), AwsError>,
    ) -> Result<(), AwsError> {
        let current = match self
            .s3
            .get_bucket_notification_configuration()
            .bucket(bucket)
            .send()
            .await
        {
            Err(e) if is_empty_notification_quirk(&e) => {
                Ok(GetBucketNotificationConfigurationOutput::builder().build())
            }
            answer => answer,
        }
        .map_sdk_err("s3:GetBucketNotificationConfiguration", bucket)?;
        let before = current.lambda_function_configurations().to_vec();
        let mut lambdas = before.clone();
        change(&mut lambdas)?;
        if lambdas == before {
            return Ok(());
        }
        let config = NotificationConfiguration::builder()
            .set_topic_configurations(Some(current.topic_configurations().to_vec()))
            .set_queue_configurations(Some(current.queue_configurations().to_vec()))
            .set_lambda_function_configurations(Some(lambdas))
            .set_event_bridge_configuration(current.event_bridge_configuration().cloned())
            .build();
        self.s3
            .put_bucket_notification_configuration()
            .bucket(bucket)
            .notification_configuration(config)
            .send()
            .await
            .map_sdk_err("s3:PutBucketNotificationConfiguration", bucket)?;
        Ok(())
    }

    /// Removes the Lambda entries of `bucket`'s notifications that `init` added for `name`
    /// (by their id `scar-<name>`), keeping every other entry.
    pub(crate) async fn remove_notification(
        &self,
        name: &str,
        bucket: &str,
    ) -> Result<(), AwsError> {
        self.update_notifications(bucket, |lambdas| {
            lambdas.retain(|c| !c.id().is_some_and(|id| is_notification_of(id, name)));
            Ok(())
        })
        .await
    }

    /// Removes S3's permission to invoke function `name` for objects of `bucket`.
    pub(crate) async fn remove_permission(&self, name: &str, bucket: &str) -> Result<(), AwsError> {
        self.lambda
            .remove_permission()
            .function_name(name)
            .statement_id(permission_id(bucket))
            .send()
            .await
            .map(drop)
            .map_sdk_err("lambda:RemovePermission", name)
    }
}

/// The notification that runs function `name` for new objects of `input`, its input
/// folder number `index`.
fn notification_entry(
    name: &str,
    function_arn: &str,
    input: &InputSpec,
    index: usize,
) -> Result<LambdaFunctionConfiguration, AwsError> {
    let prefix = input.prefix();
    let mut config = LambdaFunctionConfiguration::builder()
        .id(notification_id_of(name, index))
        .lambda_function_arn(function_arn)
        .events(aws_sdk_s3::types::Event::from("s3:ObjectCreated:*"));
    if !prefix.is_empty() {
        let rule = FilterRule::builder()
            .name(FilterRuleName::Prefix)
            .value(&prefix)
            .build();
        config = config.filter(
            NotificationConfigurationFilter::builder()
                .key(S3KeyFilter::builder().filter_rules(rule).build())
                .build(),
        );
    }
    config
        .build()
        .map_err(|e| AwsError::Input(format!("bad notification for {name}: {e}")))
}

/// [`AwsError::InputTaken`] when `other`, another function's notification, overlaps
/// `input` of function `name`: one object triggers one function.
fn taken_by(
    other: &LambdaFunctionConfiguration,
    name: &str,
    input: &InputSpec,
) -> Option<AwsError> {
    let theirs = InputSpec {
        storage: None,
        bucket: input.bucket.clone(),
        folder: notification_prefix(other).trim_end_matches('/').to_string(),
    };
    let owner = other
        .lambda_function_arn()
        .rsplit(':')
        .next()
        .unwrap_or_default();
    (owner != name && theirs.overlaps(input)).then(|| {
        AwsError::Surface(SurfaceError::InputTaken {
            input: input.to_string(),
            theirs: theirs.to_string(),
            function: owner.to_string(),
        })
    })
}

/// Whether `err` is a successful (2xx) answer the SDK could not parse because its XML root
/// is `<{root}`, as moto 5.2's generic serializer writes some S3 answers
/// (`<OperationResponse>` instead of S3's own root). Real S3 never answers so; an
/// `<Error>` body never counts.
pub(crate) fn is_wrapped_root<E>(err: &aws_sdk_s3::error::SdkError<E>, root: &str) -> bool {
    let Some(raw) = err.raw_response() else {
        return false;
    };
    let body = raw.body().bytes().map(String::from_utf8_lossy);
    raw.status().is_success()
        && matches!(err, aws_sdk_s3::error::SdkError::ServiceError(_))
        && body.is_some_and(|b| b.contains(&format!("<{root}")) && !b.contains("<Error>"))
}

/// moto answers a bucket without notifications with an empty
/// `<GetBucketNotificationResponse/>`: taken as empty only when it holds no configuration
/// at all, so that a real configuration is never dropped.
fn is_empty_notification_quirk<E>(err: &aws_sdk_s3::error::SdkError<E>) -> bool {
    let body = err
        .raw_response()
        .and_then(|r| r.body().bytes())
        .map(String::from_utf8_lossy);
    is_wrapped_root(err, "GetBucketNotificationResponse")
        && body.is_some_and(|b| !b.contains("Configuration"))
}

/// The id of the notification `init` adds to an input bucket: `scar-<function>`.
pub(crate) fn notification_id(function: &str) -> String {
    format!("scar-{function}")
}

/// The id of the notification `init` adds for a function's input folder number `index`:
/// `scar-<function>` for the first, `scar-<function>:<index>` for the others.
pub(crate) fn notification_id_of(function: &str, index: usize) -> String {
    if index == 0 {
        notification_id(function)
    } else {
        format!("{}:{index}", notification_id(function))
    }
}

/// Whether notification `id` is one `init` added for `function`.
fn is_notification_of(id: &str, function: &str) -> bool {
    let base = notification_id(function);
    id == base
        || id
            .strip_prefix(base.as_str())
            .and_then(|rest| rest.strip_prefix(':'))
            .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
}

/// The key prefix a notification filters on (empty: the whole bucket).
fn notification_prefix(config: &LambdaFunctionConfiguration) -> String {
    config
        .filter()
        .and_then(|f| f.key())
        .map(|k| k.filter_rules())
        .unwrap_or_default()
        .iter()
        .find(|r| matches!(r.name(), Some(FilterRuleName::Prefix)))
        .and_then(|r| r.value())
        .unwrap_or_default()
        .to_string()
}

/// The statement id of S3's invoke permission on a function: `scar-s3-<bucket>`, with the
/// characters statement ids do not allow (dots) turned into `-`.
pub(crate) fn permission_id(bucket: &str) -> String {
    let bucket: String = bucket
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("scar-s3-{bucket}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_what_init_adds() {
        assert_eq!(permission_id("my.bucket-1"), "scar-s3-my-bucket-1");
        assert_eq!(notification_id("f"), "scar-f");
        assert_eq!(notification_id_of("f", 2), "scar-f:2");
        assert!(is_notification_of("scar-f:2", "f"));
        assert!(!is_notification_of("scar-f:x", "f"));
        assert!(!is_notification_of("scar-fg", "f"));
    }
}
