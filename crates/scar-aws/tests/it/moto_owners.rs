//! Two users on one account: each function is tagged with its creator, and `list`,
//! `remove_all` and `remove` take only the caller's unless told to take every owner's.

use scar_aws::{AwsError, AwsProvider, OWNER_TAG};
use scar_core::provider::{LeftOut, Provider};
use scar_core::{Categorized, ErrorCategory};
use scar_test_support::moto::{spec, Moto, ACCOUNT};

use crate::on_moto::{init_zip, provider_as};

/// The names of `aws`'s functions.
async fn names(aws: &AwsProvider) -> Vec<String> {
    let listed = aws.list().await.unwrap();
    listed.into_iter().map(|f| f.spec.name).collect()
}

/// Sets (`Some`) or removes (`None`) function `name`'s owner tag, as SCAR or an older scar
/// left it.
async fn retag_owner(aws: &AwsProvider, name: &str, owner: Option<&str>) {
    let lambda = aws.lambda_client();
    let got = lambda.get_function().function_name(name).send().await;
    let arn = got
        .unwrap()
        .configuration()
        .unwrap()
        .function_arn()
        .unwrap()
        .to_string();
    match owner {
        Some(owner) => {
            let tag = lambda.tag_resource().resource(&arn).tags(OWNER_TAG, owner);
            tag.send().await.unwrap();
        }
        None => {
            let untag = lambda.untag_resource().resource(&arn).tag_keys(OWNER_TAG);
            untag.send().await.unwrap();
        }
    }
}

#[tokio::test]
async fn each_user_lists_and_removes_only_their_own_functions() {
    let Some(moto) = Moto::start() else { return };
    let alice = provider_as(&moto, &moto.create_user("alice")).await;
    let bob = provider_as(&moto, &moto.create_user("bob")).await;
    let alice_arn = format!("arn:aws:iam::{ACCOUNT}:user/alice");
    let bob_arn = format!("arn:aws:iam::{ACCOUNT}:user/bob");

    let made = init_zip(&alice, spec("alice-fn")).await.unwrap();
    assert_eq!(made.owner.as_deref(), Some(alice_arn.as_str()));
    init_zip(&alice, spec("alice-scar")).await.unwrap();
    init_zip(&alice, spec("old-fn")).await.unwrap();
    init_zip(&bob, spec("bob-fn")).await.unwrap();
    // As SCAR tags them (an IAM user's name when GetUser is denied): alice's too.
    retag_owner(&alice, "alice-scar", Some("alice")).await;
    // Made before owners were recorded: nobody's for certain.
    retag_owner(&alice, "old-fn", None).await;

    assert_eq!(names(&alice).await, ["alice-fn", "alice-scar"]);
    assert_eq!(names(&bob).await, ["bob-fn"]);
    let listing = alice.listing().await.unwrap();
    let left_out = LeftOut {
        other_owners: 1,
        no_owner: 1,
    };
    assert_eq!(listing.left_out, left_out);
    // Reading one function is not scoped: it shows whose it is.
    let theirs = alice.function("bob-fn").await.unwrap();
    assert_eq!(theirs.owner.as_deref(), Some(bob_arn.as_str()));

    // Another owner's function, or one with no owner, is refused by name: bad input.
    let refused = alice.remove("bob-fn").await.unwrap_err();
    match &refused {
        AwsError::NotOwner { owner, caller, .. } => {
            assert_eq!(owner.as_deref(), Some(bob_arn.as_str()));
            assert_eq!(caller, &alice_arn);
        }
        other => panic!("{other}"),
    }
    assert_eq!(refused.category(), ErrorCategory::Usage);
    assert!(refused.to_string().contains(&bob_arn), "{refused}");
    let refused = alice.remove("old-fn").await.unwrap_err();
    assert!(
        matches!(&refused, AwsError::NotOwner { owner: None, .. }),
        "{refused}"
    );
    assert!(refused.to_string().contains("no owner tag"), "{refused}");

    // rm -a: alice's own, nothing else.
    assert_eq!(
        alice.remove_all().await.unwrap(),
        ["alice-fn", "alice-scar"]
    );
    assert!(names(&alice).await.is_empty());
    assert_eq!(alice.listing().await.unwrap().left_out, left_out);
    assert_eq!(names(&bob).await, ["bob-fn"]);

    // Every owner's, when asked: listed with their owners, removed by name and all at once.
    let everyone = alice.clone().with_all_owners(true);
    let all = everyone.listing().await.unwrap();
    let owners: Vec<_> = all.functions.iter().map(|f| f.owner.as_deref()).collect();
    assert_eq!(owners, [Some(bob_arn.as_str()), None]);
    assert_eq!(all.left_out, LeftOut::default());
    init_zip(&bob, spec("bob-two")).await.unwrap();
    everyone.remove("bob-two").await.unwrap();
    assert_eq!(everyone.remove_all().await.unwrap(), ["bob-fn", "old-fn"]);
    assert!(everyone.list().await.unwrap().is_empty());
    assert_eq!(bob.listing().await.unwrap().left_out, LeftOut::default());
}
