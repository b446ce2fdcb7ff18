//! The store's warehouses: listing, adding and changing them (routing
//! settings, secret, active), and the one a store's `--peer-url` stands for
//! (`main`). Secrets go in and never come out, but to the relay and the
//! signature check.

use super::{Engine, EngineError, Result};
use crate::domain::role::Command;
use crate::domain::warehouse::{Warehouse, WarehouseInput, WarehouseName};
use crate::storage::{now_micros, warehouses};

impl Engine {
    /// Every warehouse, by name.
    pub async fn warehouses(&self) -> Result<Vec<Warehouse>> {
        self.require(Command::ManageWarehouses)?;
        Ok(self
            .warehouses_with_secrets()
            .await?
            .into_iter()
            .map(|(w, _)| w)
            .collect())
    }

    /// Every warehouse with the secret it signs with (`None`: the store's
    /// own): for the relays and the signature check only.
    pub(crate) async fn warehouses_with_secrets(&self) -> Result<Vec<(Warehouse, Option<String>)>> {
        let mut c = self.read().await?;
        Ok(warehouses::list(&mut c).await?)
    }

    /// One warehouse.
    pub async fn warehouse(&self, name: &str) -> Result<Warehouse> {
        self.require(Command::ManageWarehouses)?;
        let mut c = self.read().await?;
        warehouses::get(&mut c, name)
            .await?
            .map(|(w, _)| w)
            .ok_or_else(|| EngineError::UnknownWarehouse(name.to_owned()))
    }

    /// Adds a warehouse (409 when the name is taken). Its relay starts at
    /// once; no restart is needed.
    pub async fn add_warehouse(&self, input: &WarehouseInput) -> Result<Warehouse> {
        self.require(Command::ManageWarehouses)?;
        let (w, secret) = input.create().map_err(EngineError::Invalid)?;
        let row = w.clone();
        self.db
            .write(move |c| {
                Box::pin(async move {
                    if warehouses::insert(c, &row, secret.as_deref(), now_micros()).await? {
                        Ok(())
                    } else {
                        Err(EngineError::Conflict(format!(
                            "a warehouse named {} already exists; change it with PATCH (or `warehouse update`)",
                            row.name
                        )))
                    }
                })
            })
            .await?;
        self.warehouses_changed();
        Ok(w)
    }

    /// Changes the fields `input` names of a warehouse.
    pub async fn update_warehouse(&self, name: &str, input: &WarehouseInput) -> Result<Warehouse> {
        self.require(Command::ManageWarehouses)?;
        let (name, input) = (name.to_owned(), input.clone());
        let w = self
            .db
            .write(move |c| {
                Box::pin(async move {
                    let Some((current, secret)) = warehouses::get(c, &name).await? else {
                        return Err(EngineError::UnknownWarehouse(name));
                    };
                    let (w, new_secret) = input.apply(&current).map_err(EngineError::Invalid)?;
                    let secret = new_secret.or(secret);
                    warehouses::update(c, &w, secret.as_deref(), now_micros()).await?;
                    Ok(w)
                })
            })
            .await?;
        self.warehouses_changed();
        Ok(w)
    }

    /// Makes the warehouse `main` deliver to `url`, signing with the
    /// store's own secret: what `serve --role store --peer-url URL` means.
    /// Its routing settings are kept when it exists.
    pub async fn set_main_warehouse(&self, url: &str) -> Result<Warehouse> {
        let input = WarehouseInput {
            name: Some(WarehouseName::MAIN.to_owned()),
            url: Some(url.to_owned()),
            ..Default::default()
        };
        match self.add_warehouse(&input).await {
            Err(EngineError::Conflict(_)) => {
                let url_only = WarehouseInput {
                    url: Some(url.to_owned()),
                    ..Default::default()
                };
                let w = self
                    .update_warehouse(WarehouseName::MAIN, &url_only)
                    .await?;
                self.forget_main_secret().await?;
                Ok(w)
            }
            other => other,
        }
    }

    /// `main` signs with the store's own secret (`--sync-secret`).
    async fn forget_main_secret(&self) -> Result<()> {
        self.db
            .write(move |c| {
                Box::pin(async move {
                    if let Some((w, _)) = warehouses::get(c, WarehouseName::MAIN).await? {
                        warehouses::update(c, &w, None, now_micros()).await?;
                    }
                    Ok::<_, EngineError>(())
                })
            })
            .await
    }

    /// Tells whoever watches the warehouses (the relays' supervisor) that
    /// they changed.
    fn warehouses_changed(&self) {
        self.warehouses_changed.notify_one();
        self.wake_relay();
    }

    /// Resolves when warehouses are added or changed in this process.
    pub async fn warehouses_change(&self) {
        self.warehouses_changed.notified().await;
    }
}
