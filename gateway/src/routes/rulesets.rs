//! Scoring rulesets of the active OU (issue 3, item 1): `GET /rulesets` → `{"rulesets":[…]}`
//! (read scope), `POST /rulesets` → 201 with the created ruleset, `GET /rulesets/{id}`,
//! `PUT /rulesets/{id}` (replace), `PATCH /rulesets/{id}` (merge; `{"active": false}`
//! deactivates), `DELETE /rulesets/{id}` → 204 (writes need the admin scope) — the generic
//! handlers of [`super::documents`].
//!
//! The shape and the field-level validation are the model's
//! ([`leadstream_domain::model::ruleset`]); invalid bodies are 400 like the seeds' trigger
//! routes.

use leadstream_domain::model::ruleset::{CreateRuleset, PatchRuleset, ReplaceRuleset, Ruleset};
use leadstream_shared::catalog::collections::RULESETS;
use leadstream_shared::ids::new_id;

use super::documents::{Editable, Resource};
use crate::error::ApiError;

/// `/rulesets`.
pub struct Rulesets;

impl Resource for Rulesets {
    type Doc = Ruleset;
    type Create = CreateRuleset;
    const COLLECTION: &'static str = RULESETS;
    const LIST: &'static str = "rulesets";
    const WHAT: &'static str = "ruleset";

    fn id(doc: &Ruleset) -> &str {
        &doc.id
    }

    fn create(req: CreateRuleset, now: &str) -> Result<Ruleset, ApiError> {
        Ok(req.validate(new_id("rs"), now)?)
    }
}

impl Editable for Rulesets {
    type Replace = ReplaceRuleset;
    type Patch = PatchRuleset;

    fn replace(req: ReplaceRuleset, old: &Ruleset, now: &str) -> Result<Ruleset, ApiError> {
        Ok(req.validate(old, now)?)
    }

    fn patch(req: PatchRuleset, old: &Ruleset, now: &str) -> Result<Ruleset, ApiError> {
        Ok(req.validate(old, now)?)
    }
}
