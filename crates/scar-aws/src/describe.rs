//! Reading functions back: one ([`AwsProvider::describe_function`]) or all of scar's in
//! the region (the caller's, or every owner's), each decoded by the
//! [spec codec](crate::spec_codec).

use aws_sdk_lambda::operation::get_function::GetFunctionOutput;
use scar_core::provider::{FunctionInfo, Listing, SurfaceError};

use crate::error::{NotFoundExt as _, SdkResultExt as _};
use crate::spec_codec::{self, is_scar};
use crate::{AwsError, AwsProvider};

/// GetFunction calls in flight at once while listing.
const LIST_CONCURRENCY: usize = 8;

impl AwsProvider {
    /// Lambda's GetFunction of `name`, whoever created it; `None` when there is no such
    /// function.
    pub(crate) async fn get_function(
        &self,
        name: &str,
    ) -> Result<Option<GetFunctionOutput>, AwsError> {
        self.lambda
            .get_function()
            .function_name(name)
            .send()
            .await
            .map_sdk_err("lambda:GetFunction", name)
            .optional()
    }

    /// Lambda's GetFunction of `name`: [`SurfaceError::NotFound`] when there is no such
    /// function.
    pub(crate) async fn existing_function(
        &self,
        name: &str,
    ) -> Result<GetFunctionOutput, AwsError> {
        self.get_function(name)
            .await?
            .ok_or_else(|| SurfaceError::NotFound(name.into()).into())
    }

    /// A scar function's description: [`SurfaceError::NotFound`] when there is no such
    /// function, [`AwsError::NotScarFunction`] when scar did not create it.
    pub(crate) async fn describe_function(&self, name: &str) -> Result<FunctionInfo, AwsError> {
        let out = self.existing_function(name).await?;
        if !is_scar(out.tags()) {
            return Err(AwsError::NotScarFunction(name.into()));
        }
        Ok(spec_codec::decode(&out, self.endpoint_url.as_deref()))
    }

    /// A function's description, whoever created it (for `init`, which just did).
    pub(crate) async fn function_info(&self, name: &str) -> Result<FunctionInfo, AwsError> {
        Ok(spec_codec::decode(
            &self.existing_function(name).await?,
            self.endpoint_url.as_deref(),
        ))
    }

    /// The functions this provider takes ([`AwsProvider::with_all_owners`]): the caller's
    /// of those tagged `createdby=scar`, by name, and how many it left out.
    pub(crate) async fn list_owned(&self) -> Result<Listing, AwsError> {
        let (functions, left_out) = self.owned(self.list_functions().await?).await?;
        Ok(Listing {
            functions,
            left_out,
        })
    }

    /// The functions tagged `createdby=scar`, whoever created them, by name.
    pub(crate) async fn list_functions(&self) -> Result<Vec<FunctionInfo>, AwsError> {
        let names = self.function_names().await?;
        // ListFunctions has no tags: read each function, a few at a time.
        let mut set = tokio::task::JoinSet::new();
        let mut infos = Vec::new();
        let mut pending = names.into_iter();
        loop {
            while set.len() < LIST_CONCURRENCY {
                let Some(name) = pending.next() else { break };
                let lambda = self.lambda.clone();
                set.spawn(async move {
                    let out = lambda.get_function().function_name(&name).send().await;
                    (name, out)
                });
            }
            let Some(joined) = set.join_next().await else {
                break;
            };
            let Ok((name, out)) = joined else { continue };
            // None: removed between the listing and now.
            let out = out.map_sdk_err("lambda:GetFunction", name).optional()?;
            if let Some(out) = out.filter(|out| is_scar(out.tags())) {
                infos.push(spec_codec::decode(&out, self.endpoint_url.as_deref()));
            }
        }
        infos.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
        Ok(infos)
    }

    /// The names of every function in the region, scar's or not.
    async fn function_names(&self) -> Result<Vec<String>, AwsError> {
        let mut names = Vec::new();
        let mut pages = self.lambda.list_functions().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_sdk_err("lambda:ListFunctions", "functions")?;
            names.extend(
                page.functions()
                    .iter()
                    .filter_map(|c| c.function_name.clone()),
            );
        }
        Ok(names)
    }
}
