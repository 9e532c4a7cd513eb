//! Where the content cache is, for every command ([`chosen_cache_folder`]):
//! as oc-mirror does, `--cache-dir DIR` and `$OC_MIRROR_CACHE` name a base
//! folder and the cache is a subfolder of it (`DIR/.ferry/cache`;
//! oc-mirror's own is `DIR/.oc-mirror/.cache`), so a home folder is never
//! filled directly; giving both is an error, as in oc-mirror.
//! `$FERRY_CACHE_DIR` names the cache folder itself. Without any of them:
//! `$XDG_CACHE_HOME/ferry`, else `~/.cache/ferry`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::common::error;

/// The default cache folder.
pub(crate) fn default_cache_dir() -> PathBuf {
    let environment = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    environment("XDG_CACHE_HOME")
        .map(|folder| folder.join("ferry"))
        .or_else(|| environment("HOME").map(|home| home.join(".cache/ferry")))
        .unwrap_or_else(|| PathBuf::from(".ferry-cache"))
}

/// The subfolder of a `--cache-dir` or `$OC_MIRROR_CACHE` base folder
/// that holds ferry's cache.
pub(crate) const CACHE_SUBFOLDER: &str = ".ferry/cache";

/// The cache folder the user chose, or `None` for the default: the
/// subfolder of `--cache-dir` (`flag`) or `$OC_MIRROR_CACHE`, else
/// `$FERRY_CACHE_DIR` itself. `variable` reads the environment (a
/// parameter so tests need not change the process's own).
pub(crate) fn chosen_cache_folder(
    flag: Option<&Path>,
    variable: impl Fn(&str) -> Option<OsString>,
) -> Result<Option<PathBuf>, String> {
    let variable = |name: &str| variable(name).filter(|value| !value.is_empty());
    let oc_mirror = variable("OC_MIRROR_CACHE");
    if flag.is_some() && oc_mirror.is_some() {
        return Err("either OC_MIRROR_CACHE or --cache-dir can be used but not both".to_owned());
    }
    if let Some(base) = flag.map(Path::to_path_buf).or(oc_mirror.map(PathBuf::from)) {
        return Ok(Some(base.join(CACHE_SUBFOLDER)));
    }
    Ok(variable("FERRY_CACHE_DIR").map(PathBuf::from))
}

/// [`chosen_cache_folder`] from the process's environment.
pub(crate) fn chosen_cache_folder_here(flag: Option<&Path>) -> Result<Option<PathBuf>, String> {
    chosen_cache_folder(flag, |name| std::env::var_os(name))
}

/// The cache folder a command uses: the one the user chose, else the
/// default; an error (nothing done) when the choice is refused.
pub(crate) fn cache_folder(flag: Option<&Path>) -> Result<PathBuf, ExitCode> {
    chosen_cache_folder_here(flag)
        .map(|chosen| chosen.unwrap_or_else(default_cache_dir))
        .map_err(|refused| error(format!("{refused}; nothing was done")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn environment(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| OsString::from(value))
        }
    }

    #[test]
    fn cache_dir_and_oc_mirror_cache_name_a_base_folder_as_in_oc_mirror() {
        let flag = chosen_cache_folder(Some(Path::new("/home/me")), environment(&[])).unwrap();
        assert_eq!(flag, Some(PathBuf::from("/home/me/.ferry/cache")));
        let variable =
            chosen_cache_folder(None, environment(&[("OC_MIRROR_CACHE", "/data")])).unwrap();
        assert_eq!(variable, Some(PathBuf::from("/data/.ferry/cache")));
        let both = chosen_cache_folder(
            Some(Path::new("/home/me")),
            environment(&[("OC_MIRROR_CACHE", "/data")]),
        );
        assert_eq!(
            both.unwrap_err(),
            "either OC_MIRROR_CACHE or --cache-dir can be used but not both"
        );
    }

    #[test]
    fn ferry_cache_dir_names_the_cache_itself_and_comes_after_oc_mirror_cache() {
        let own = chosen_cache_folder(None, environment(&[("FERRY_CACHE_DIR", "/c")])).unwrap();
        assert_eq!(own, Some(PathBuf::from("/c")));
        let flag_first = chosen_cache_folder(
            Some(Path::new("/base")),
            environment(&[("FERRY_CACHE_DIR", "/c")]),
        )
        .unwrap();
        assert_eq!(flag_first, Some(PathBuf::from("/base/.ferry/cache")));
        let oc_mirror_first = chosen_cache_folder(
            None,
            environment(&[("FERRY_CACHE_DIR", "/c"), ("OC_MIRROR_CACHE", "/o")]),
        )
        .unwrap();
        assert_eq!(oc_mirror_first, Some(PathBuf::from("/o/.ferry/cache")));
        assert_eq!(
            chosen_cache_folder(None, environment(&[("OC_MIRROR_CACHE", "")])).unwrap(),
            None
        );
    }
}
