//! `GET /api/v1/sync/{namespace}` (a Coxswain extension, not Argo's): the namespace's
//! synchronization locks and the server's parallelism, with limits, holders and waiters.

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiResult;

/// `GET /api/v1/sync/{namespace}`: `{"locks": [LockStatus...]}`, sorted by lock key.
pub async fn list(
    State(state): State<AppState>,
    Path(namespace): Path<String>,
) -> ApiResult<Json<Value>> {
    let locks = state.engine.sync_status(Some(&namespace)).await?;
    Ok(Json(json!({ "locks": locks })))
}
