//! API version negotiation: `/v1.NN/…` prefixes, checked against the
//! supported range as dockerd checks them.

use std::fmt;

use super::http::ApiError;

/// An API version `major.minor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion(pub u32, pub u32);

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

/// The version this server speaks.
pub const API_VERSION: ApiVersion = ApiVersion(1, 47);
/// [`API_VERSION`] as the `Api-Version` header carries it.
pub const API_VERSION_HEADER: &str = "1.47";
/// The oldest version it accepts.
pub const MIN_API_VERSION: ApiVersion = ApiVersion(1, 24);

impl ApiVersion {
    /// Parses `1.47`.
    pub fn parse(s: &str) -> Option<ApiVersion> {
        let (a, b) = s.split_once('.')?;
        let digits = |x: &str| !x.is_empty() && x.bytes().all(|c| c.is_ascii_digit());
        if !digits(a) || !digits(b) {
            return None;
        }
        Some(ApiVersion(a.parse().ok()?, b.parse().ok()?))
    }
}

/// Splits a request path into its version (if prefixed) and the rest.
/// `/v1.47/containers/json` → (Some(1.47), `/containers/json`). A version
/// outside the supported range is an error worded as dockerd words it.
pub fn split_version(path: &str) -> Result<(Option<ApiVersion>, &str), ApiError> {
    let Some(rest) = path.strip_prefix("/v") else {
        return Ok((None, path));
    };
    let (seg, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let Some(v) = ApiVersion::parse(seg) else {
        return Ok((None, path));
    };
    if v < MIN_API_VERSION {
        return Err(ApiError::bad_request(format!(
            "client version {v} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"
        )));
    }
    if v > API_VERSION {
        return Err(ApiError::bad_request(format!(
            "client version {v} is too new. Maximum supported API version is {API_VERSION}"
        )));
    }
    Ok((Some(v), if tail.is_empty() { "/" } else { tail }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        assert_eq!(
            split_version("/v1.47/containers/json").unwrap(),
            (Some(ApiVersion(1, 47)), "/containers/json")
        );
        assert_eq!(split_version("/_ping").unwrap(), (None, "/_ping"));
        assert_eq!(split_version("/volumes").unwrap(), (None, "/volumes"));
        let e = split_version("/v1.12/version").unwrap_err();
        assert_eq!(
            e.message,
            "client version 1.12 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version"
        );
        assert!(
            split_version("/v1.99/version")
                .unwrap_err()
                .message
                .contains("too new")
        );
        assert!(ApiVersion(1, 9) < ApiVersion(1, 24));
        assert_eq!(API_VERSION.to_string(), API_VERSION_HEADER);
    }
}
