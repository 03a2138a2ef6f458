//! The bandit handle: sticky variant assignments and rewards, from `mia-experiments`.

use std::ffi::c_char;
use std::sync::LazyLock;

use mia::experiments::bandit::{Bandit, BanditConfig, Policy};
use mia::{Allocator, AssignmentRequest, CampaignId, ContactId, Reward, VariantId};
use serde::{Deserialize, Serialize};

use crate::boundary;
use crate::error::{FfiError, MiaStatus};
use crate::handle::{Registry, to_pointer};
use crate::strings::{Out, OutString, json_arg, opt_json_arg, str_arg};

/// A multi-armed bandit: which variant each contact gets, learning from rewards. Opaque;
/// create with [`mia_bandit_new`], free with [`mia_bandit_free`]. Thread-safe.
pub struct MiaBandit {
    _private: [u8; 0],
}

static BANDITS: LazyLock<Registry<Bandit>> = LazyLock::new(|| Registry::new("bandit"));

/// `mia_bandit_new`'s configuration.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BanditInput {
    policy: Option<String>,
    epsilon: Option<f64>,
    min_share: Option<f64>,
    min_samples: Option<u64>,
    batch: Option<u64>,
    seed: Option<u64>,
}

/// Creates a bandit and stores its handle in `*out_bandit`. `config_json` may be `NULL`; keys
/// (all optional, unknown keys are an error): `"policy"` (`"thompson"` default, `"kl-ucb"`,
/// `"epsilon-greedy"`), `"epsilon"` (exploration of epsilon-greedy, default 0.1),
/// `"min_share"` (every arm's floor share of new assignments, default 0), `"min_samples"`
/// (uniform until each arm has this many pulls, default 0), `"batch"` (refresh the policy's
/// view every N assignments, default 1), `"seed"` (default 0).
///
/// # Safety
/// `config_json` is `NULL` or a NUL-terminated string; `out_bandit` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mia_bandit_new(
    config_json: *const c_char,
    out_bandit: *mut *mut MiaBandit,
) -> MiaStatus {
    boundary::run("mia_bandit_new", || {
        // SAFETY: the caller promises `out_bandit` is valid for a write.
        let out = unsafe { Out::new(out_bandit, std::ptr::null_mut(), "out_bandit") }?;
        // SAFETY: the caller promises a NUL-terminated string or NULL.
        let input: BanditInput = unsafe { opt_json_arg(config_json, "config_json") }?;
        let defaults = BanditConfig::default();
        let mut policy = match input.policy.as_deref() {
            Some(name) => Policy::from_name(name).map_err(|e| FfiError::invalid(e.to_string()))?,
            None => Policy::Thompson,
        };
        match (&mut policy, input.epsilon) {
            (Policy::EpsilonGreedy { epsilon }, Some(e)) => *epsilon = e,
            (_, Some(_)) => {
                return Err(FfiError::invalid(
                    "epsilon belongs to the epsilon-greedy policy",
                ));
            }
            _ => {}
        }
        let bandit = Bandit::new(BanditConfig {
            policy,
            min_share: input.min_share.unwrap_or(defaults.min_share),
            min_samples: input.min_samples.unwrap_or(defaults.min_samples),
            batch: input.batch.unwrap_or(defaults.batch),
            seed: input.seed.unwrap_or(defaults.seed),
        })
        .map_err(|e| FfiError::invalid(e.to_string()))?;
        out.set(to_pointer(BANDITS.insert(bandit)?));
        Ok(())
    })
}

/// Frees a bandit. `NULL` does nothing; a second free returns `MIA_CLOSED_HANDLE`.
#[unsafe(no_mangle)]
pub extern "C" fn mia_bandit_free(bandit: *mut MiaBandit) -> MiaStatus {
    boundary::run("mia_bandit_free", || {
        if bandit.is_null() {
            return Ok(());
        }
        BANDITS.remove(bandit.addr()).map(drop)
    })
}

/// Assigns a variant to `contact` in `campaign`, from `variants_json` (a JSON array of variant
/// ids, `["A", "B"]`), and stores `{"variant", "propensity"}` in `*out_assignment_json`.
/// Sticky: the same contact gets the same variant of a campaign again.
///
/// # Safety
/// `bandit` is a handle or `NULL`; the strings are `NULL` or NUL-terminated;
/// `out_assignment_json` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mia_bandit_assign(
    bandit: *mut MiaBandit,
    campaign: *const c_char,
    contact: *const c_char,
    variants_json: *const c_char,
    out_assignment_json: *mut *mut c_char,
) -> MiaStatus {
    boundary::run("mia_bandit_assign", || {
        // SAFETY: the caller promises `out_assignment_json` is valid for a write.
        let out = unsafe { OutString::string(out_assignment_json, "out_assignment_json") }?;
        // SAFETY: the caller promises NUL-terminated strings or NULL.
        let (campaign, contact, variants) = unsafe {
            (
                str_arg(campaign, "campaign")?,
                str_arg(contact, "contact")?,
                json_arg::<Vec<String>>(variants_json, "variants_json")?,
            )
        };
        let entry = BANDITS.get(bandit.addr())?;
        let variants: Vec<VariantId> = variants.into_iter().map(VariantId::new).collect();
        let (campaign, contact) = (CampaignId::new(campaign), ContactId::new(contact));
        let assignment = entry.assign(&AssignmentRequest::new(&campaign, &contact, &variants))?;
        out.set_json(&assignment)
    })
}

/// Records a reward (1.0 for a conversion; values are clamped to [0, 1]) for the contact's
/// assignment in `campaign`. Stores in `*out_counted` whether it counted: `false` when the
/// contact has no assignment there or was rewarded already (each assignment counts once).
///
/// # Safety
/// `bandit` is a handle or `NULL`; the strings are `NULL` or NUL-terminated; `out_counted` is
/// valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mia_bandit_reward(
    bandit: *mut MiaBandit,
    campaign: *const c_char,
    contact: *const c_char,
    variant: *const c_char,
    value: f64,
    out_counted: *mut bool,
) -> MiaStatus {
    boundary::run("mia_bandit_reward", || {
        // SAFETY: the caller promises `out_counted` is valid for a write.
        let out = unsafe { Out::new(out_counted, false, "out_counted") }?;
        // SAFETY: the caller promises NUL-terminated strings or NULL.
        let (campaign, contact, variant) = unsafe {
            (
                str_arg(campaign, "campaign")?,
                str_arg(contact, "contact")?,
                str_arg(variant, "variant")?,
            )
        };
        if !value.is_finite() {
            return Err(FfiError::invalid(format!(
                "reward must be finite, got {value}"
            )));
        }
        let entry = BANDITS.get(bandit.addr())?;
        out.set(entry.record(&Reward {
            campaign: CampaignId::new(campaign),
            contact: ContactId::new(contact),
            variant: VariantId::new(variant),
            value,
        }));
        Ok(())
    })
}

/// One arm's counts.
#[derive(Serialize)]
struct ArmReport {
    variant: VariantId,
    pulls: f64,
    reward: f64,
    mean: f64,
}

/// Stores the pulls and rewards per variant of `campaign` as a JSON array of
/// `{"variant", "pulls", "reward", "mean"}` in `*out_stats_json` (empty for an unknown
/// campaign).
///
/// # Safety
/// `bandit` is a handle or `NULL`; `campaign` is `NULL` or NUL-terminated; `out_stats_json`
/// is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mia_bandit_stats(
    bandit: *mut MiaBandit,
    campaign: *const c_char,
    out_stats_json: *mut *mut c_char,
) -> MiaStatus {
    boundary::run("mia_bandit_stats", || {
        // SAFETY: the caller promises `out_stats_json` is valid for a write.
        let out = unsafe { OutString::string(out_stats_json, "out_stats_json") }?;
        // SAFETY: the caller promises a NUL-terminated string or NULL.
        let campaign = CampaignId::new(unsafe { str_arg(campaign, "campaign") }?);
        let entry = BANDITS.get(bandit.addr())?;
        let arms: Vec<ArmReport> = entry
            .arm_stats(&campaign)
            .into_iter()
            .map(|(variant, s)| ArmReport {
                variant,
                pulls: s.pulls,
                reward: s.reward,
                mean: s.mean(),
            })
            .collect();
        out.set_json(&arms)
    })
}
