//! ferry's configuration model: the `ImageSetConfiguration` and
//! `DeleteImageSetConfiguration` kinds of `mirror.openshift.io/v2alpha1`,
//! image references and digests, loaded with exact diagnostics.
