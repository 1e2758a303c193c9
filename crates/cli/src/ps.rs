//! `vmctl ps [-a]`: the services as the Node CLI's table shows them.

use std::time::{SystemTime, UNIX_EPOCH};

use tonic::Status;

use crate::api::{ListServicesRequest, Phase, Service};
use crate::connection::Client;
use crate::format::{age, exit_summary, phase_name, table};

/// The most a page holds (the API's limit), as the Node client asks.
const PAGE_SIZE: u32 = 1000;

/// Every service (without `all`, those that have not exited), newest first.
pub async fn list(client: &mut Client, all: bool) -> Result<Vec<Service>, Status> {
    let phases = if all {
        vec![]
    } else {
        [
            Phase::Created,
            Phase::Waiting,
            Phase::Starting,
            Phase::Running,
            Phase::Paused,
            Phase::Stopping,
        ]
        .map(|p| p as i32)
        .to_vec()
    };
    let mut services = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut page_token = String::new();
    loop {
        let request = ListServicesRequest {
            phases: phases.clone(),
            page_size: PAGE_SIZE,
            page_token,
            ..Default::default()
        };
        let page = client.list_services(request).await?.into_inner();
        services.extend(page.services);
        if page.next_page_token.is_empty() {
            break;
        }
        if !seen.insert(page.next_page_token.clone()) {
            return Err(Status::internal(
                "ListServices returned the same page token twice",
            ));
        }
        page_token = page.next_page_token;
    }
    // Stable, as JavaScript's sort: services made in the same millisecond keep the daemon's order.
    services.sort_by_key(|s| std::cmp::Reverse(s.created_unix_ms));
    Ok(services)
}

/// The table, with its header, without the final newline.
pub fn render(services: &[Service]) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let rows: Vec<Vec<String>> = services
        .iter()
        .map(|s| {
            let phase = phase_name(Phase::try_from(s.phase).unwrap_or(Phase::Created));
            vec![
                s.id.clone(),
                s.name.clone(),
                s.target.clone(),
                if s.status.is_empty() {
                    phase.to_string()
                } else {
                    format!("{phase}*")
                },
                address(s),
                exit_summary(s.exit.as_ref()),
                age(s.created_unix_ms, now),
            ]
        })
        .collect();
    table(
        &["ID", "NAME", "TARGET", "PHASE", "ADDRESS", "EXIT", "AGE"],
        &rows,
    )
}

/// Its network's lease, else what its target reports; "-" for none.
fn address(s: &Service) -> String {
    match (&s.network, s.addresses.first()) {
        (Some(network), _) => network.address.clone(),
        (None, Some(address)) => address.clone(),
        (None, None) => "-".to_string(),
    }
}
