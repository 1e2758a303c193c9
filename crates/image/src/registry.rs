//! Pulling from an OCI registry through the distribution API (oci-client): anonymous
//! bearer tokens, basic auth from the Docker client config, indexes resolved to
//! linux/amd64, layers fetched a few at a time, each verified by digest and size while
//! it streams into the store.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt, stream};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{DigestError, OciDistributionError, OciErrorCode};
use oci_client::manifest::{
    IMAGE_MANIFEST_LIST_MEDIA_TYPE, IMAGE_MANIFEST_MEDIA_TYPE, OCI_IMAGE_INDEX_MEDIA_TYPE,
    OCI_IMAGE_MEDIA_TYPE, OciDescriptor, OciManifest,
};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use crate::digest::Digest;
use crate::error::{ErrorCode, ImageError, Result};
use crate::fetched::{Fetched, LayerRef};
use crate::manifest::{check_layers, choose_platform, parse_config, parse_manifest};
use crate::progress::{ProgressFn, Throttled, report};
use crate::source::normalized_name;
use crate::store::Store;

const MANIFEST_TYPES: &[&str] = &[
    OCI_IMAGE_MEDIA_TYPE,
    IMAGE_MANIFEST_MEDIA_TYPE,
    OCI_IMAGE_INDEX_MEDIA_TYPE,
    IMAGE_MANIFEST_LIST_MEDIA_TYPE,
];
/// Layers downloaded at once, as docker does by default.
const CONCURRENT_LAYERS: usize = 3;

pub struct RegistryOptions<'a> {
    pub insecure: &'a [String],
    pub docker_config: Option<&'a Path>,
    pub timeout: Duration,
}

pub async fn fetch(
    store: &Store,
    reference: &Reference,
    options: &RegistryOptions<'_>,
    progress: &ProgressFn,
) -> Result<Fetched> {
    let name = normalized_name(reference);
    let what = format!("image {name}");
    let client = client_for(reference, options);
    let auth = credentials(reference, options.docker_config)?;
    report(progress, "resolve", "", 0, 0);

    let (bytes, _) = client
        .pull_manifest_raw(reference, &auth, MANIFEST_TYPES)
        .await
        .map_err(|e| registry_error(e, &name))?;
    let first = store.put_bytes(&bytes, None)?;
    if let Some(pinned) = reference.digest()
        && Digest::parse(pinned)? != first
    {
        return Err(ImageError::data_loss(format!(
            "{what}: the registry's manifest has digest {first}"
        )));
    }
    let mut blobs = vec![first.clone()];
    let (manifest_digest, manifest) = match parse_manifest(&bytes, &what)? {
        OciManifest::Image(manifest) => (first, manifest),
        OciManifest::ImageIndex(index) => {
            let chosen = choose_platform(&index, &what)?;
            let by_digest = reference.clone_with_digest(chosen.to_string());
            let (bytes, _) = client
                .pull_manifest_raw(&by_digest, &auth, MANIFEST_TYPES)
                .await
                .map_err(|e| registry_error(e, &name))?;
            let digest = store.put_bytes(&bytes, Some(&chosen))?;
            blobs.push(digest.clone());
            match parse_manifest(&bytes, &what)? {
                OciManifest::Image(manifest) => (digest, manifest),
                OciManifest::ImageIndex(_) => {
                    return Err(ImageError::invalid(format!(
                        "{what}: an index points at another index"
                    )));
                }
            }
        }
    };
    let layers = check_layers(&manifest, &what)?;
    let config_digest = Digest::parse(&manifest.config.digest)?;
    let config_size = u64::try_from(manifest.config.size).unwrap_or(0);
    if !store.has_blob(&config_digest) {
        download(
            store,
            &client,
            reference,
            &config_digest,
            config_size,
            None,
            &name,
        )
        .await?;
    }
    let config_bytes = std::fs::read(store.blob_path(&config_digest))
        .map_err(|e| ImageError::io(format!("reading the config of {what}"), e))?;
    let config = parse_config(&config_bytes, &what)?;
    blobs.push(config_digest.clone());

    stream::iter(layers.iter().cloned())
        .map(|LayerRef { digest, size, .. }| {
            let client = &client;
            let name = &name;
            async move {
                if store.has_blob(&digest) {
                    report(progress, "exists", &digest.to_string(), size, size);
                    return Ok(());
                }
                download(store, client, reference, &digest, size, Some(progress), name).await?;
                report(progress, "downloaded", &digest.to_string(), size, size);
                Ok::<(), ImageError>(())
            }
        })
        .buffer_unordered(CONCURRENT_LAYERS)
        .try_collect::<()>()
        .await?;

    blobs.extend(layers.iter().map(|l| l.digest.clone()));
    Ok(Fetched {
        digest: manifest_digest,
        names: if reference.digest().is_some() && reference.tag().is_none() {
            vec![name]
        } else {
            vec![tag_name(reference)]
        },
        config_digest,
        config,
        layers,
        blobs,
    })
}

/// `registry/repo:tag` even when the reference also pins a digest.
fn tag_name(reference: &Reference) -> String {
    format!(
        "{}/{}:{}",
        reference.registry(),
        reference.repository(),
        reference.tag().unwrap_or("latest")
    )
}

/// Streams one blob into the store, verified by digest and size before it is visible.
async fn download(
    store: &Store,
    client: &Client,
    reference: &Reference,
    digest: &Digest,
    size: u64,
    progress: Option<&ProgressFn>,
    name: &str,
) -> Result<()> {
    let descriptor = OciDescriptor {
        digest: digest.to_string(),
        size: size as i64,
        ..OciDescriptor::default()
    };
    let mut blob = client
        .pull_blob_stream(reference, &descriptor)
        .await
        .map_err(|e| registry_error(e, name))?;
    let mut writer = store.blob_writer()?;
    let mut throttle =
        progress.map(|sink| Throttled::new(sink.clone(), "download", digest.to_string(), size));
    while let Some(chunk) = blob.next().await {
        let chunk = chunk.map_err(|e| stream_error(&e, digest, name))?;
        writer
            .write_all(&chunk)
            .map_err(|e| ImageError::io(format!("storing {digest}"), e))?;
        if size > 0 && writer.written() > size {
            return Err(ImageError::data_loss(format!(
                "blob {digest}: the registry sent more than the {size} bytes expected"
            )));
        }
        if let Some(throttle) = throttle.as_mut() {
            throttle.update(writer.written());
        }
    }
    if let Some(throttle) = throttle.as_mut() {
        throttle.finish(writer.written());
    }
    writer.commit(Some(digest), (size > 0).then_some(size))?;
    Ok(())
}

/// A failure mid-stream: oci-client's own digest check at the end, or a broken transfer.
fn stream_error(err: &std::io::Error, digest: &Digest, name: &str) -> ImageError {
    match err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<DigestError>())
    {
        Some(DigestError::VerificationError { actual, .. }) => {
            ImageError::data_loss(format!("blob {digest}: content has digest {actual} (corrupted)"))
        }
        Some(other) => ImageError::data_loss(format!("blob {digest}: {other}")),
        None => ImageError::new(
            ErrorCode::Unavailable,
            format!("{name}: downloading {digest}: the transfer broke off ({err})"),
        ),
    }
}

fn client_for(reference: &Reference, options: &RegistryOptions<'_>) -> Client {
    let registry = reference.resolve_registry().to_owned();
    let mut plain_http: Vec<String> = options.insecure.to_vec();
    if is_loopback(&registry) {
        plain_http.push(registry);
    }
    Client::new(ClientConfig {
        protocol: ClientProtocol::HttpsExcept(plain_http),
        platform_resolver: None,
        connect_timeout: Some(options.timeout),
        read_timeout: Some(options.timeout),
        ..ClientConfig::default()
    })
}

/// Loopback registries speak plain HTTP, as docker assumes for them.
fn is_loopback(registry: &str) -> bool {
    let host = match registry.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => registry,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Credentials for the reference's registry from the Docker client config, or anonymous.
fn credentials(reference: &Reference, docker_config: Option<&Path>) -> Result<RegistryAuth> {
    let server = match reference.registry() {
        "docker.io" | "index.docker.io" => "https://index.docker.io/v1/",
        other => other,
    };
    let credential = match docker_config {
        Some(path) => match std::fs::File::open(path) {
            Ok(file) => docker_credential::get_credential_from_reader(std::io::BufReader::new(file), server),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(RegistryAuth::Anonymous),
            Err(e) => return Err(ImageError::io(format!("reading {}", path.display()), e)),
        },
        None => docker_credential::get_credential(server),
    };
    Ok(match credential {
        Ok(docker_credential::DockerCredential::UsernamePassword(user, password)) => {
            RegistryAuth::Basic(user, password)
        }
        Ok(docker_credential::DockerCredential::IdentityToken(token)) => RegistryAuth::Bearer(token),
        Err(_) => RegistryAuth::Anonymous,
    })
}

/// A registry failure as one readable line with the status a caller can act on.
pub fn registry_error(err: OciDistributionError, name: &str) -> ImageError {
    let code = match &err {
        OciDistributionError::ImageManifestNotFoundError(_) => ErrorCode::NotFound,
        OciDistributionError::UnauthorizedError { .. } | OciDistributionError::AuthenticationFailure(_) => {
            ErrorCode::Unauthenticated
        }
        OciDistributionError::RegistryError { envelope, .. } => {
            match envelope.errors.first().map(|e| &e.code) {
                Some(
                    OciErrorCode::ManifestUnknown
                    | OciErrorCode::NameUnknown
                    | OciErrorCode::BlobUnknown
                    | OciErrorCode::NotFound,
                ) => ErrorCode::NotFound,
                Some(OciErrorCode::Unauthorized) => ErrorCode::Unauthenticated,
                Some(OciErrorCode::Denied) => ErrorCode::PermissionDenied,
                Some(OciErrorCode::Toomanyrequests) => ErrorCode::Unavailable,
                _ => ErrorCode::InvalidArgument,
            }
        }
        OciDistributionError::ServerError { code, .. } => match code {
            401 => ErrorCode::Unauthenticated,
            403 => ErrorCode::PermissionDenied,
            404 => ErrorCode::NotFound,
            _ => ErrorCode::Unavailable,
        },
        OciDistributionError::RequestError(_) => ErrorCode::Unavailable,
        OciDistributionError::DigestError(_) => ErrorCode::DataLoss,
        OciDistributionError::IoError(e)
            if e.raw_os_error() == Some(rustix::io::Errno::NOSPC.raw_os_error()) =>
        {
            ErrorCode::ResourceExhausted
        }
        _ => ErrorCode::Internal,
    };
    let detail = match &err {
        OciDistributionError::RequestError(e) if e.is_timeout() => {
            "the registry did not answer in time".to_owned()
        }
        OciDistributionError::RequestError(e) if e.is_connect() => {
            format!("cannot connect to the registry ({e})")
        }
        OciDistributionError::RequestError(e) => format!("talking to the registry: {e}"),
        OciDistributionError::ServerError { code, message, .. } => {
            let message = message.trim();
            let short: String = message.chars().take(200).collect();
            format!(
                "the registry answered HTTP {code}{}",
                if short.is_empty() {
                    String::new()
                } else {
                    format!(": {short}")
                }
            )
        }
        other => other.to_string(),
    };
    let headline = match code {
        ErrorCode::NotFound => format!("{name}: no such image in the registry"),
        ErrorCode::Unauthenticated => {
            format!("{name}: the registry refused the credentials (log in, or check ~/.docker/config.json)")
        }
        ErrorCode::PermissionDenied => format!("{name}: the registry denied access"),
        _ => name.to_owned(),
    };
    ImageError::new(code, format!("{headline}: {detail}"))
}

#[cfg(test)]
mod tests {
    use super::is_loopback;

    #[test]
    fn loopback_registries() {
        for yes in [
            "localhost:5000",
            "127.0.0.1:5000",
            "127.1.2.3",
            "[::1]:5000",
            "localhost",
        ] {
            assert!(is_loopback(yes), "{yes}");
        }
        for no in [
            "docker.io",
            "10.0.0.1:5000",
            "index.docker.io",
            "localhost.example.com:5000",
        ] {
            assert!(!is_loopback(no), "{no}");
        }
    }
}
