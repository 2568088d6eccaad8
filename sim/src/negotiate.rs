//! Content negotiation: which representation a client asks for in `Accept`.

use super::status::ApiError;

/// A response representation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Representation {
    /// Plain JSON objects and lists.
    Json,
    /// `meta.k8s.io/v1` Table (kubectl get).
    Table,
    /// `PartialObjectMetadata` / `PartialObjectMetadataList` (metadata-only clients).
    PartialMetadata,
    /// `apidiscovery.k8s.io/v2` aggregated discovery.
    AggregatedDiscovery,
}

impl Representation {
    /// The Content-Type of a response in this representation.
    pub fn content_type(self) -> &'static str {
        match self {
            Representation::Json => "application/json",
            Representation::Table => "application/json;as=Table;v=v1;g=meta.k8s.io",
            Representation::PartialMetadata => {
                "application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io"
            }
            Representation::AggregatedDiscovery => {
                "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
            }
        }
    }
}

/// What the endpoint can produce besides plain JSON.
#[derive(Clone, Copy, Debug, Default)]
pub struct Offers {
    /// Tables and metadata-only answers (resource endpoints).
    pub tables: bool,
    /// Aggregated discovery (`/api`, `/apis`).
    pub aggregated_discovery: bool,
}

/// Picks the first representation in `accept` the endpoint can produce.
pub fn negotiate(accept: Option<&str>, offers: Offers) -> Result<Representation, ApiError> {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Ok(Representation::Json);
    };
    for entry in accept.split(',') {
        let mut parts = entry.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let mut as_kind = "";
        let mut group = "";
        let mut version = "";
        for param in parts {
            if let Some((key, value)) = param.split_once('=') {
                match key.trim() {
                    "as" => as_kind = value.trim(),
                    "g" => group = value.trim(),
                    "v" => version = value.trim(),
                    _ => {}
                }
            }
        }
        let json_like = matches!(media.as_str(), "application/json" | "*/*" | "application/*");
        if !json_like {
            continue;
        }
        match (as_kind, group) {
            ("", _) => return Ok(Representation::Json),
            ("Table", "meta.k8s.io")
                if offers.tables && (version == "v1" || version == "v1beta1") =>
            {
                return Ok(Representation::Table);
            }
            ("PartialObjectMetadata" | "PartialObjectMetadataList", "meta.k8s.io")
                if offers.tables =>
            {
                return Ok(Representation::PartialMetadata);
            }
            ("APIGroupDiscoveryList", "apidiscovery.k8s.io")
                if offers.aggregated_discovery && version == "v2" =>
            {
                return Ok(Representation::AggregatedDiscovery);
            }
            _ => continue,
        }
    }
    Err(ApiError::not_acceptable(
        "application/json, application/yaml",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUBECTL_GET: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
    const KUBECTL_DISCOVERY: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";

    #[test]
    fn kubectl_get_gets_a_table_where_offered() {
        let tables = Offers {
            tables: true,
            ..Offers::default()
        };
        assert_eq!(
            negotiate(Some(KUBECTL_GET), tables),
            Ok(Representation::Table)
        );
        assert_eq!(
            negotiate(Some(KUBECTL_GET), Offers::default()),
            Ok(Representation::Json)
        );
    }

    #[test]
    fn aggregated_discovery_and_fallbacks() {
        let discovery = Offers {
            aggregated_discovery: true,
            ..Offers::default()
        };
        assert_eq!(
            negotiate(Some(KUBECTL_DISCOVERY), discovery),
            Ok(Representation::AggregatedDiscovery)
        );
        assert_eq!(negotiate(None, discovery), Ok(Representation::Json));
        assert_eq!(
            negotiate(
                Some("application/vnd.kubernetes.protobuf, */*"),
                Offers::default()
            ),
            Ok(Representation::Json)
        );
        assert_eq!(
            negotiate(
                Some("application/vnd.kubernetes.protobuf"),
                Offers::default()
            )
            .map_err(|e| e.code),
            Err(406)
        );
    }
}
