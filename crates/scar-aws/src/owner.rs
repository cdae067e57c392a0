//! Whose a function is: the [`OWNER_TAG`] `init` writes (the caller's identity, from STS
//! GetCallerIdentity), and the scope it gives `list`, `remove_all` and `remove` on an
//! account and region several people share: the caller's own functions, unless the
//! provider is told to take every owner's ([`AwsProvider::with_all_owners`]).
//!
//! **What counts as the caller's.** A function whose `owner` tag is the caller's ARN (what
//! scar writes), or, as SCAR writes it, the caller's unique id (IAM GetUser's `UserId`, which
//! GetCallerIdentity gives too) or an IAM user's name (SCAR's fallback when GetUser is
//! denied). A function with no `owner` tag (made before owners were recorded) is nobody's
//! for certain: left out like another owner's, and counted apart.
//!
//! **Not a permission.** The tag keeps one user's `rm -a` from removing another's
//! functions by mistake; what a user may do is IAM's to say.

use scar_core::provider::{FunctionInfo, LeftOut};

use crate::error::SdkResultExt as _;
use crate::spec_codec::is_tag_value;
use crate::{AwsError, AwsProvider};

/// The tag holding a function's creator (SCAR's name for it): the caller's ARN at `init`.
pub const OWNER_TAG: &str = "owner";

/// The identity requests are made as: STS GetCallerIdentity's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Caller {
    /// `arn:aws:iam::123456789012:user/alice`, `arn:aws:sts::123456789012:assumed-role/R/S`.
    pub(crate) arn: String,
    /// The unique id: `AIDA...` for an IAM user, `AROA...:<session>` for a role's session.
    pub(crate) user_id: String,
}

/// Whose a function is, to the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ownership {
    /// The caller's.
    Caller,
    /// Another identity's (the tag's value).
    Other(String),
    /// No owner recorded.
    Unknown,
}

impl Caller {
    /// The `owner` tag of the functions this caller creates: its ARN, or where that is no
    /// valid tag value (over 256 characters, a character tags do not allow, such as a `,`
    /// in a user's name) its unique id.
    pub(crate) fn tag_value(&self) -> &str {
        if is_tag_value(&self.arn) || !is_tag_value(&self.user_id) {
            &self.arn
        } else {
            &self.user_id
        }
    }

    /// Whose a function with `owner` (its tag, if any) is.
    pub(crate) fn ownership(&self, owner: Option<&str>) -> Ownership {
        match owner {
            None | Some("") => Ownership::Unknown,
            Some(owner) if self.is(owner) => Ownership::Caller,
            Some(owner) => Ownership::Other(owner.to_string()),
        }
    }

    /// Whether `owner` names this caller: its ARN, its unique id, or an IAM user's name.
    fn is(&self, owner: &str) -> bool {
        owner == self.arn
            || owner == self.user_id
            || self.iam_user_name().is_some_and(|name| owner == name)
    }

    /// An IAM user's name (`arn:aws:iam::<account>:user/[<path>/]<name>`); `None` for
    /// another kind of identity.
    fn iam_user_name(&self) -> Option<&str> {
        let (_, resource) = self.arn.split_once(":iam::")?;
        let (_, user) = resource.split_once(":user/")?;
        user.rsplit('/').next()
    }
}

impl AwsProvider {
    /// The caller's identity, asked of STS on first use.
    pub(crate) async fn caller(&self) -> Result<&Caller, AwsError> {
        self.caller
            .get_or_try_init(|| async {
                let out = self
                    .sts
                    .get_caller_identity()
                    .send()
                    .await
                    .map_sdk_err("sts:GetCallerIdentity", "for the credentials in use")?;
                Ok(Caller {
                    arn: out.arn().unwrap_or_default().to_string(),
                    user_id: out.user_id().unwrap_or_default().to_string(),
                })
            })
            .await
    }

    /// [`AwsError::NotOwner`] when `info` is not the caller's function and this provider
    /// does not take every owner's.
    pub(crate) async fn check_owner(&self, info: &FunctionInfo) -> Result<(), AwsError> {
        if self.all_owners {
            return Ok(());
        }
        let caller = self.caller().await?;
        match caller.ownership(info.owner.as_deref()) {
            Ownership::Caller => Ok(()),
            Ownership::Other(owner) => Err(AwsError::NotOwner {
                function: info.spec.name.clone(),
                owner: Some(owner),
                caller: caller.arn.clone(),
            }),
            Ownership::Unknown => Err(AwsError::NotOwner {
                function: info.spec.name.clone(),
                owner: None,
                caller: caller.arn.clone(),
            }),
        }
    }

    /// `functions` split into those this provider takes (the caller's, or with
    /// [`AwsProvider::with_all_owners`] all of them) and a count of the others.
    pub(crate) async fn owned(
        &self,
        functions: Vec<FunctionInfo>,
    ) -> Result<(Vec<FunctionInfo>, LeftOut), AwsError> {
        if self.all_owners {
            return Ok((functions, LeftOut::default()));
        }
        let caller = self.caller().await?;
        let mut left_out = LeftOut::default();
        let mut taken = Vec::new();
        for info in functions {
            match caller.ownership(info.owner.as_deref()) {
                Ownership::Caller => taken.push(info),
                Ownership::Other(_) => left_out.other_owners += 1,
                Ownership::Unknown => left_out.no_owner += 1,
            }
        }
        Ok((taken, left_out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GetCallerIdentity's answer for `arn` and `user_id`.
    fn caller(arn: &str, user_id: &str) -> Caller {
        let (arn, user_id) = (arn.to_string(), user_id.to_string());
        Caller { arn, user_id }
    }

    /// The forms SCAR wrote (the unique id; an IAM user's name) are the caller's too;
    /// another user of the same name in a path, a role's other session, or nothing, are not.
    #[test]
    fn whose_a_function_is() {
        let alice = caller("arn:aws:iam::123456789012:user/team/alice", "AIDAALICE");
        for own in [
            "arn:aws:iam::123456789012:user/team/alice",
            "AIDAALICE",
            "alice",
        ] {
            assert_eq!(alice.ownership(Some(own)), Ownership::Caller, "{own}");
        }
        for other in [
            "arn:aws:iam::123456789012:user/bob",
            "AIDABOB",
            "bob",
            "team",
        ] {
            assert_eq!(
                alice.ownership(Some(other)),
                Ownership::Other(other.into()),
                "{other}"
            );
        }
        assert_eq!(alice.ownership(None), Ownership::Unknown);
        assert_eq!(alice.ownership(Some("")), Ownership::Unknown);

        let session = caller(
            "arn:aws:sts::123456789012:assumed-role/scar/alice",
            "AROAROLE:alice",
        );
        assert_eq!(
            session.ownership(Some("alice")),
            Ownership::Other("alice".into())
        );
        assert_eq!(
            session.ownership(Some("arn:aws:sts::123456789012:assumed-role/scar/bob")),
            Ownership::Other("arn:aws:sts::123456789012:assumed-role/scar/bob".into())
        );
        assert_eq!(session.ownership(Some("AROAROLE:alice")), Ownership::Caller);
    }

    /// An ARN that is no valid tag value (a `,` an IAM name allows) is stored as the
    /// unique id, which still reads back as the caller's.
    #[test]
    fn an_arn_tags_do_not_allow_is_stored_as_the_unique_id() {
        let plain = caller("arn:aws:iam::123456789012:user/alice", "AIDAALICE");
        assert_eq!(plain.tag_value(), "arn:aws:iam::123456789012:user/alice");
        let comma = caller("arn:aws:iam::123456789012:user/a,b", "AIDAAB");
        assert_eq!(comma.tag_value(), "AIDAAB");
        assert_eq!(comma.ownership(Some(comma.tag_value())), Ownership::Caller);
        let long = caller(
            &format!("arn:aws:iam::1:user/{}", "p/".repeat(200)),
            "AIDAL",
        );
        assert_eq!(long.tag_value(), "AIDAL");
    }
}
