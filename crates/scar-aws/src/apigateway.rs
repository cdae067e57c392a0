//! SCAR's API Gateway in front of a function (`-api NAME`, FDL `api_gateway: {name}`),
//! made as SCAR 4 makes it (`scar/providers/aws/apigateway.py` and the `api_gateway`
//! defaults of `scar/parser/cfgfile.py` in grycap/scar):
//!
//! - a regional REST API of that name (tagged `createdby=scar`, the [owner](crate::OWNER_TAG)
//!   and `scar:function`);
//! - a resource `{proxy+}` under `/`, taking method `ANY` without authorization, with a
//!   Lambda proxy integration (`AWS_PROXY`, `POST` to the function's invocation ARN); the
//!   `X-Amz-Invocation-Type` header is passed on, so that `Event` invokes asynchronously;
//! - a deployment on stage `scar`;
//! - API Gateway's permission to invoke the function (`apigateway.amazonaws.com`, from any
//!   method and path of that API: `arn:aws:execute-api:<region>:<account>:<api id>/*`;
//!   SCAR's second permission, for `<api id>/scar/ANY`, is inside that one).
//!
//! The API id is kept where SCAR keeps it, in the function's variable `API_GATEWAY_ID`; the
//! URL is computed from it and the region: `https://<api id>.execute-api.<region>.amazonaws.com/scar/launch`
//! (SCAR's; any path under the stage reaches the function through `{proxy+}`). With an
//! endpoint override (an emulator), the URL is the emulator's:
//! `<endpoint>/restapis/<api id>/scar/_user_request_/launch` (LocalStack's shape of
//! `execute-api` URLs, and the path the local provider's `scar serve` answers on), since
//! requests to AWS's host would not reach the emulator's APIs.

use aws_sdk_apigateway::types::{EndpointConfiguration, EndpointType, IntegrationType};
use scar_core::FunctionSpec;

use crate::deploy::Created;
use crate::error::{NotFoundExt as _, SdkResultExt as _};
use crate::spec_codec::CREATED_BY_TAG;
use crate::{AwsError, AwsProvider, OWNER_TAG};

/// The function variable holding its REST API's id (SCAR's name for it).
pub(crate) const API_ID_VAR: &str = "API_GATEWAY_ID";
/// The stage the API is deployed on (SCAR's).
pub const API_STAGE: &str = "scar";
/// The resource under `/` that takes every path.
const PROXY_PATH: &str = "{proxy+}";
/// The header that picks the invocation type (`Event`: asynchronous), passed on.
const INVOCATION_TYPE_METHOD: &str = "method.request.header.X-Amz-Invocation-Type";
const INVOCATION_TYPE_INTEGRATION: &str = "integration.request.header.X-Amz-Invocation-Type";
/// The tag naming the function an API was made for.
const FUNCTION_TAG: &str = "scar:function";
/// DeleteRestApi is allowed once every 30 s per account: throttled calls are tried again.
const DELETE_ATTEMPTS: u32 = 6;
const DELETE_RETRY_DELAY: std::time::Duration = std::time::Duration::from_secs(10);

/// What separates the stage from the user's path in an emulator's URL.
const USER_REQUEST: &str = "_user_request_";

/// The URL of REST API `api_id` in `region`, as SCAR prints it; with an `endpoint`
/// override, where the emulator at that endpoint serves the API.
///
/// ```
/// assert_eq!(
///     scar_aws::api_url("a1b2c3d4e5", "eu-west-1", None),
///     "https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/scar/launch"
/// );
/// assert_eq!(
///     scar_aws::api_url("a1b2c3d4e5", "eu-west-1", Some("http://127.0.0.1:4566/")),
///     "http://127.0.0.1:4566/restapis/a1b2c3d4e5/scar/_user_request_/launch"
/// );
/// ```
pub fn api_url(api_id: &str, region: &str, endpoint: Option<&str>) -> String {
    match endpoint {
        Some(endpoint) => format!(
            "{}/restapis/{api_id}/{API_STAGE}/{USER_REQUEST}/launch",
            endpoint.trim_end_matches('/')
        ),
        None => format!("https://{api_id}.execute-api.{region}.amazonaws.com/{API_STAGE}/launch"),
    }
}

/// The API id in a URL [`api_url`] made, with or without an endpoint override.
pub(crate) fn api_id_of(url: &str) -> Option<&str> {
    let aws = || {
        let host = url.strip_prefix("https://")?.split('/').next()?;
        let (id, rest) = host.split_once('.')?;
        rest.starts_with("execute-api.").then_some(id)
    };
    let emulator = || {
        let (_, rest) = url.split_once("/restapis/")?;
        let (id, rest) = rest.split_once('/')?;
        let rest = rest.strip_prefix(API_STAGE)?.strip_prefix('/')?;
        rest.starts_with(USER_REQUEST).then_some(id)
    };
    aws().or_else(emulator).filter(|id| !id.is_empty())
}

/// The integration's URI: Lambda's Invoke of `function_arn`, through API Gateway in `region`.
fn integration_uri(region: &str, function_arn: &str) -> String {
    format!(
        "arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{function_arn}/invocations"
    )
}

/// The statement id of API Gateway's permission to invoke the function.
fn permission_id(api_id: &str) -> String {
    format!("scar-apigateway-{api_id}")
}

/// The ARN the function will have: `arn:aws:lambda:<region>:<account>:function:<name>`,
/// with the account of `caller_arn` (the integration is made before the function, so
/// that the function is created with its API's id, as SCAR does).
fn function_arn(region: &str, caller_arn: &str, name: &str) -> String {
    let account = caller_arn.split(':').nth(4).unwrap_or_default();
    format!("arn:aws:lambda:{region}:{account}:function:{name}")
}

impl AwsProvider {
    /// The REST API `api_name` of function `spec`, its `{proxy+}` resource, method,
    /// integration and deployment; its id. Each resource made is recorded in `created`
    /// (the API holds the rest: deleting it undoes them all).
    pub(crate) async fn create_api_gateway(
        &self,
        spec: &FunctionSpec,
        api_name: &str,
        owner: &str,
        created: &mut Vec<Created>,
    ) -> Result<String, AwsError> {
        let caller = self.caller().await?.arn.clone();
        let made = self
            .apigateway
            .create_rest_api()
            .name(api_name)
            .description(format!(
                "API created automatically with scar for function {}",
                spec.name
            ))
            .endpoint_configuration(
                EndpointConfiguration::builder()
                    .types(EndpointType::Regional)
                    .build(),
            )
            .tags(CREATED_BY_TAG.0, CREATED_BY_TAG.1)
            .tags(OWNER_TAG, owner)
            .tags(FUNCTION_TAG, &spec.name)
            .send()
            .await
            .map_sdk_err("apigateway:CreateRestApi", api_name)?;
        let api_id = made.id().unwrap_or_default().to_string();
        created.push(Created::RestApi(api_id.clone()));
        let resources = self
            .apigateway
            .get_resources()
            .rest_api_id(&api_id)
            .send()
            .await
            .map_sdk_err("apigateway:GetResources", &api_id)?;
        let root = (resources.items().iter())
            .find(|r| r.path() == Some("/"))
            .and_then(|r| r.id())
            .unwrap_or_default();
        let resource = self
            .apigateway
            .create_resource()
            .rest_api_id(&api_id)
            .parent_id(root)
            .path_part(PROXY_PATH)
            .send()
            .await
            .map_sdk_err("apigateway:CreateResource", &api_id)?;
        let resource_id = resource.id().unwrap_or_default();
        self.apigateway
            .put_method()
            .rest_api_id(&api_id)
            .resource_id(resource_id)
            .http_method("ANY")
            .authorization_type("NONE")
            .request_parameters(INVOCATION_TYPE_METHOD, false)
            .send()
            .await
            .map_sdk_err("apigateway:PutMethod", &api_id)?;
        let arn = function_arn(&self.region, &caller, &spec.name);
        self.apigateway
            .put_integration()
            .rest_api_id(&api_id)
            .resource_id(resource_id)
            .http_method("ANY")
            .r#type(IntegrationType::AwsProxy)
            .integration_http_method("POST")
            .uri(integration_uri(&self.region, &arn))
            .request_parameters(INVOCATION_TYPE_INTEGRATION, INVOCATION_TYPE_METHOD)
            .send()
            .await
            .map_sdk_err("apigateway:PutIntegration", &api_id)?;
        self.apigateway
            .create_deployment()
            .rest_api_id(&api_id)
            .stage_name(API_STAGE)
            .send()
            .await
            .map_sdk_err("apigateway:CreateDeployment", &api_id)?;
        Ok(api_id)
    }

    /// API Gateway's permission to invoke function `name` from REST API `api_id` (any
    /// stage, method and path of it).
    pub(crate) async fn permit_api_gateway(
        &self,
        name: &str,
        function_arn: &str,
        api_id: &str,
        created: &mut Vec<Created>,
    ) -> Result<(), AwsError> {
        let account = function_arn.split(':').nth(4).unwrap_or_default();
        let statement_id = permission_id(api_id);
        self.lambda
            .add_permission()
            .function_name(name)
            .statement_id(&statement_id)
            .action("lambda:InvokeFunction")
            .principal("apigateway.amazonaws.com")
            .source_arn(format!(
                "arn:aws:execute-api:{}:{account}:{api_id}/*",
                self.region
            ))
            .send()
            .await
            .map_sdk_err("lambda:AddPermission", name)?;
        created.push(Created::Permission { statement_id });
        Ok(())
    }

    /// Removes REST API `api_id` of function `name` and the function's permission for it;
    /// either gone already is fine.
    pub(crate) async fn remove_api_gateway(
        &self,
        name: &str,
        api_id: &str,
    ) -> Result<(), AwsError> {
        self.delete_rest_api(api_id).await?;
        self.lambda
            .remove_permission()
            .function_name(name)
            .statement_id(permission_id(api_id))
            .send()
            .await
            .map_sdk_err("lambda:RemovePermission", name)
            .optional()?;
        Ok(())
    }

    /// Deletes REST API `api_id` (a missing one is fine), trying again while API Gateway
    /// throttles the call.
    pub(crate) async fn delete_rest_api(&self, api_id: &str) -> Result<(), AwsError> {
        let mut attempt = 1;
        loop {
            let deleted = self
                .apigateway
                .delete_rest_api()
                .rest_api_id(api_id)
                .send()
                .await
                .map(drop)
                .map_sdk_err("apigateway:DeleteRestApi", api_id)
                .optional();
            match deleted {
                Err(e)
                    if e.has_code(&["TooManyRequestsException"]) && attempt < DELETE_ATTEMPTS =>
                {
                    attempt += 1;
                    tokio::time::sleep(DELETE_RETRY_DELAY).await;
                }
                other => return other.map(drop),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SCAR's URL, integration URI and the function's ARN, and the id read back from the
    /// URL (what `rm` deletes).
    #[test]
    fn scars_names() {
        let url = api_url("r20bwcmdf9", "us-east-1", None);
        assert_eq!(
            url,
            "https://r20bwcmdf9.execute-api.us-east-1.amazonaws.com/scar/launch"
        );
        assert_eq!(api_id_of(&url), Some("r20bwcmdf9"));
        assert_eq!(api_id_of("https://example.org/scar/launch"), None);
        assert_eq!(
            api_id_of("https://.execute-api.us-east-1.amazonaws.com/scar/launch"),
            None
        );
        assert_eq!(api_id_of("r20bwcmdf9"), None);
        let arn = function_arn("eu-west-1", "arn:aws:iam::123456789012:user/alice", "f");
        assert_eq!(arn, "arn:aws:lambda:eu-west-1:123456789012:function:f");
        assert_eq!(
            integration_uri("eu-west-1", &arn),
            "arn:aws:apigateway:eu-west-1:lambda:path/2015-03-31/functions/arn:aws:lambda:eu-west-1:123456789012:function:f/invocations"
        );
    }

    /// With an endpoint override, the emulator's URL (LocalStack's `execute-api` shape),
    /// whose id `rm` finds as well.
    #[test]
    fn an_emulators_url() {
        for endpoint in ["http://127.0.0.1:5000", "http://127.0.0.1:5000/"] {
            let url = api_url("r20bwcmdf9", "us-east-1", Some(endpoint));
            assert_eq!(
                url,
                "http://127.0.0.1:5000/restapis/r20bwcmdf9/scar/_user_request_/launch"
            );
            assert_eq!(api_id_of(&url), Some("r20bwcmdf9"));
        }
        let behind_a_path = api_url("abc", "us-east-1", Some("https://emu.example/aws"));
        assert_eq!(
            behind_a_path,
            "https://emu.example/aws/restapis/abc/scar/_user_request_/launch"
        );
        assert_eq!(api_id_of(&behind_a_path), Some("abc"));
        // Not SCAR's stage, no id, not an API's URL.
        assert_eq!(
            api_id_of("http://h/restapis/abc/prod/_user_request_/launch"),
            None
        );
        assert_eq!(
            api_id_of("http://h/restapis//scar/_user_request_/launch"),
            None
        );
        assert_eq!(api_id_of("http://h/restapis/abc/scar/launch"), None);
        assert_eq!(api_id_of("http://127.0.0.1:5000/"), None);
    }
}
