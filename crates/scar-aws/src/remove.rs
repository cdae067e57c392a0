//! Removing a function ([`Provider::remove`](scar_core::provider::Provider::remove)): its
//! API Gateway, its triggers, its Batch resources, the function, its log group and its ECR
//! repository;
//! never a bucket or an object. Only the caller's functions, unless the provider takes
//! every owner's (`owner.rs`).

use scar_core::lambda::log_group;

use crate::error::{NotFoundExt as _, SdkResultExt as _};
use crate::{AwsError, AwsProvider};

impl AwsProvider {
    /// Removes the function, its API Gateway's REST API and permission, the notifications
    /// and permissions `init` added to its input buckets (other notifications stay), its
    /// Batch resources, its log group and its ECR
    /// repository (`scar-<name>`, when scar created it). The buckets and their objects
    /// stay. [`AwsError::NotOwner`] when it is not the caller's and this provider does not
    /// take every owner's.
    pub(crate) async fn remove_function(&self, name: &str) -> Result<(), AwsError> {
        scar_core::spec::validate_name(name)?;
        let info = self.describe_function(name).await?;
        self.check_owner(&info).await?;
        self.remove_described(&info).await
    }

    /// Removes every function [`AwsProvider::list_owned`] lists (the caller's, or every
    /// owner's); returns the names removed, or the first error after trying them all.
    pub(crate) async fn remove_all_functions(&self) -> Result<Vec<String>, AwsError> {
        let mut removed = Vec::new();
        let mut first_error = None;
        for info in self.list_owned().await?.functions {
            match self.remove_described(&info).await {
                Ok(()) => removed.push(info.spec.name),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(removed),
        }
    }

    /// Removes the function `info` describes, and what `init` made for it.
    async fn remove_described(
        &self,
        info: &scar_core::provider::FunctionInfo,
    ) -> Result<(), AwsError> {
        let spec = &info.spec;
        let name = spec.name.as_str();
        // First, so that a failure leaves the function, which still names it, for `rm`
        // to try again.
        let api_id = (info.api_url.as_deref()).and_then(crate::apigateway::api_id_of);
        if let Some(api_id) = api_id {
            self.remove_api_gateway(name, api_id).await?;
        }
        let mut buckets: Vec<&str> = Vec::new();
        // A storage provider's folder has no notification.
        for input in spec.inputs.iter().filter(|i| i.storage.is_none()) {
            if !buckets.contains(&input.bucket.as_str()) {
                buckets.push(&input.bucket);
            }
        }
        for bucket in buckets {
            self.remove_trigger(name, bucket).await?;
        }
        if spec.execution_mode.uses_batch() {
            self.remove_batch(name).await?;
        }
        self.delete_lambda_function(name).await?;
        self.delete_log_group(name).await?;
        // Kept when asked (`delete_image: false`), and never one scar did not push
        // (`create_image: false`), as SCAR does.
        if spec.keep_image || spec.reuse_image {
            return Ok(());
        }
        self.delete_ecr_repository(&crate::ecr_repository_name(name))
            .await
    }

    /// The notification and the permission that let `bucket` invoke function `name`; gone
    /// already is fine.
    async fn remove_trigger(&self, name: &str, bucket: &str) -> Result<(), AwsError> {
        self.remove_notification(name, bucket).await.optional()?;
        self.remove_permission(name, bucket).await.optional()?;
        Ok(())
    }

    pub(crate) async fn delete_lambda_function(&self, name: &str) -> Result<(), AwsError> {
        self.lambda
            .delete_function()
            .function_name(name)
            .send()
            .await
            .map(drop)
            .map_sdk_err("lambda:DeleteFunction", name)
    }

    /// Deletes a bucket this crate created: its objects first.
    pub(crate) async fn delete_bucket(&self, bucket: &str) -> Result<(), AwsError> {
        let mut pages = self
            .s3
            .list_objects_v2()
            .bucket(bucket)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_sdk_err("s3:ListObjectsV2", bucket)?;
            for key in page.contents().iter().filter_map(|o| o.key()) {
                self.delete_object(bucket, key).await?;
            }
        }
        self.s3
            .delete_bucket()
            .bucket(bucket)
            .send()
            .await
            .map_sdk_err("s3:DeleteBucket", bucket)?;
        Ok(())
    }

    /// Deletes object `key` of `bucket`.
    pub(crate) async fn delete_object(&self, bucket: &str, key: &str) -> Result<(), AwsError> {
        self.s3
            .delete_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map(drop)
            .map_sdk_err("s3:DeleteObject", format!("{bucket}/{key}"))
    }

    /// Deletes the function's log group; a missing one is fine.
    pub(crate) async fn delete_log_group(&self, name: &str) -> Result<(), AwsError> {
        let group = log_group(name);
        self.logs
            .delete_log_group()
            .log_group_name(&group)
            .send()
            .await
            .map_sdk_err("logs:DeleteLogGroup", group)
            .optional()?;
        Ok(())
    }
}
