//! The plugin's Kubernetes edge: the user's kubeconfig and context, like kubectl; resets read as
//! raw objects (see `summary`), the Secret and the reset it creates, and following a reset with a
//! watch until it is final.

use std::collections::BTreeMap;

use futures::StreamExt;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, ObjectMeta, PostParams,
};
use kube::config::KubeConfigOptions;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Config, Resource, ResourceExt};
use serde_json::Value;

use super::summary::Summary;
use crate::api::{
    PasscodeReset, PasscodeResetSpec, SecretKeySelector, SecretSource, WorkProfilePasscodePolicy,
};
use crate::passcode::Passcode;

/// The label on Secrets the plugin creates; it deletes only Secrets that carry it.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "kubectl-passcode");
/// The Secret's key holding the passcode.
pub const KEY: &str = "passcode";

/// A client and the namespace to work in (`-n`, else the context's).
pub struct Target {
    pub client: Client,
    pub namespace: String,
}

pub async fn connect(context: Option<String>, namespace: Option<String>) -> anyhow::Result<Target> {
    crate::install_crypto_provider();
    let options = KubeConfigOptions {
        context,
        ..Default::default()
    };
    let config = match Config::from_kubeconfig(&options).await {
        Ok(c) => c,
        Err(e) if options.context.is_some() => return Err(e.into()),
        // No kubeconfig: in a pod, like kubectl.
        Err(_) => Config::infer().await?,
    };
    let namespace = namespace.unwrap_or_else(|| config.default_namespace.clone());
    Ok(Target {
        client: Client::try_from(config)?,
        namespace,
    })
}

impl Target {
    fn resets(&self) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), &self.namespace, &resource())
    }

    fn secrets(&self) -> Api<Secret> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// The resets of the namespace (or of every namespace), oldest first, as JSON.
    pub async fn list(&self, all_namespaces: bool) -> anyhow::Result<Vec<Value>> {
        let api = if all_namespaces {
            Api::all_with(self.client.clone(), &resource())
        } else {
            self.resets()
        };
        let mut items: Vec<Value> = api
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<_, _>>()?;
        items.sort_by_key(|r| {
            r.pointer("/metadata/creationTimestamp")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        });
        Ok(items)
    }

    pub async fn get(&self, name: &str) -> anyhow::Result<Option<Value>> {
        Ok(match self.resets().get_opt(name).await? {
            Some(obj) => Some(serde_json::to_value(obj)?),
            None => None,
        })
    }

    /// Every WorkProfilePasscodePolicy; an empty list when this user may not list them (the
    /// checklist then says no requirements are known, and the operator still judges).
    pub async fn policies(&self) -> Vec<WorkProfilePasscodePolicy> {
        Api::<WorkProfilePasscodePolicy>::all(self.client.clone())
            .list(&ListParams::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default()
    }

    /// Creates the reset under `name`, reading its passcode from the Secret of the same name.
    pub async fn create_reset(
        &self,
        name: &str,
        mut spec: PasscodeResetSpec,
        with_passcode: bool,
    ) -> Result<PasscodeReset, kube::Error> {
        if with_passcode {
            spec.new_passcode = Some(SecretSource {
                secret_key_ref: SecretKeySelector {
                    name: name.to_owned(),
                    key: KEY.to_owned(),
                },
                delete_secret_after_finished: false,
            });
        }
        let mut reset = PasscodeReset::new(name, spec);
        reset.metadata.labels = Some(BTreeMap::from([(
            MANAGED_BY.0.to_owned(),
            MANAGED_BY.1.to_owned(),
        )]));
        Api::<PasscodeReset>::namespaced(self.client.clone(), &self.namespace)
            .create(&PostParams::default(), &reset)
            .await
    }

    /// Deletes a reset the plugin created and could not complete (nothing was sent: it had no
    /// Secret yet). Best effort.
    pub async fn delete_reset(&self, name: &str) {
        let _ = self.resets().delete(name, &DeleteParams::default()).await;
    }

    /// The Secret with the passcode, owned by the reset: deleting the reset deletes it too.
    /// Immutable, labelled as the plugin's.
    pub async fn create_secret(
        &self,
        owner: &PasscodeReset,
        passcode: &Passcode,
    ) -> anyhow::Result<()> {
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(owner.name_any()),
                labels: Some(BTreeMap::from([(
                    MANAGED_BY.0.to_owned(),
                    MANAGED_BY.1.to_owned(),
                )])),
                owner_references: Some(vec![OwnerReference {
                    api_version: PasscodeReset::api_version(&()).into_owned(),
                    kind: PasscodeReset::kind(&()).into_owned(),
                    name: owner.name_any(),
                    uid: owner.uid().unwrap_or_default(),
                    ..Default::default()
                }]),
                ..Default::default()
            },
            immutable: Some(true),
            data: Some(BTreeMap::from([(
                KEY.to_owned(),
                ByteString(passcode.as_bytes().to_vec()),
            )])),
            ..Default::default()
        };
        self.secrets()
            .create(&PostParams::default(), &secret)
            .await?;
        Ok(())
    }

    /// Deletes the reset's Secret if the plugin made it for this reset (its label and owner).
    /// `Ok(true)`: deleted now; `Ok(false)`: not there, or not the plugin's to delete.
    pub async fn delete_own_secret(
        &self,
        reset: &Summary,
        reset_uid: &str,
    ) -> anyhow::Result<bool> {
        let Some(name) = &reset.secret else {
            return Ok(false);
        };
        let Some(secret) = self.secrets().get_opt(name).await? else {
            return Ok(false);
        };
        let ours = secret.labels().get(MANAGED_BY.0).map(String::as_str) == Some(MANAGED_BY.1)
            && secret.owner_references().iter().any(|o| o.uid == reset_uid);
        if !ours {
            return Ok(false);
        }
        let params = DeleteParams {
            preconditions: Some(kube::api::Preconditions {
                uid: secret.uid(),
                resource_version: None,
            }),
            ..Default::default()
        };
        match self.secrets().delete(name, &params).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.is_not_found() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Follows the reset with a watch until it is final, calling `seen` at each new phase or
    /// reason (and at the first sight). Returns the final reset and its uid.
    pub async fn follow(
        &self,
        name: &str,
        seen: &mut dyn FnMut(&Summary),
    ) -> anyhow::Result<(Summary, String)> {
        let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
        let mut events = std::pin::pin!(watcher(self.resets(), config).default_backoff());
        let mut last: Option<(Option<String>, Option<String>)> = None;
        let mut errors = 0;
        while let Some(event) = events.next().await {
            let obj = match event {
                Ok(watcher::Event::Apply(obj) | watcher::Event::InitApply(obj)) => obj,
                Ok(watcher::Event::Delete(_)) => {
                    anyhow::bail!("PasscodeReset {name} was deleted before it ended")
                }
                Ok(_) => continue,
                Err(e) => {
                    errors += 1;
                    if errors >= 5 {
                        anyhow::bail!("cannot watch PasscodeReset {name}: {e}");
                    }
                    continue;
                }
            };
            errors = 0;
            let uid = obj.uid().unwrap_or_default();
            let summary = Summary::from_json(&serde_json::to_value(&obj)?);
            let now = (summary.phase.clone(), summary.reason.clone());
            if last.as_ref() != Some(&now) {
                seen(&summary);
                last = Some(now);
            }
            if summary.is_final() {
                return Ok((summary, uid));
            }
        }
        anyhow::bail!("the watch of PasscodeReset {name} ended")
    }
}

fn resource() -> ApiResource {
    ApiResource::erase::<PasscodeReset>(&())
}
