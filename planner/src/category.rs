//! The categories of images, as oc-mirror sorts them: they decide the exit
//! status of a run whose images failed, and which IDMS/ITMS object an
//! image's mirror goes in.

/// What kind of content an image is part of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Category {
    /// A release payload or one of its component images (`mirror.platform`).
    Release,
    /// A catalog, bundle or related image (`mirror.operators`).
    Operator,
    /// An image of `mirror.additionalImages`.
    Additional,
    /// An image a helm chart names (`mirror.helm`).
    Helm,
}

impl Category {
    /// Every category, in the order summaries list them.
    pub const ALL: [Category; 4] = [
        Category::Release,
        Category::Operator,
        Category::Additional,
        Category::Helm,
    ];

    /// The exit status bit of a run in which an image of this category
    /// failed (the README's table): 2, 4, 8 or 16.
    pub fn exit_bit(self) -> u8 {
        match self {
            Category::Release => 2,
            Category::Operator => 4,
            Category::Additional => 8,
            Category::Helm => 16,
        }
    }

    /// The word people read: "release", "operator", "additional", "helm".
    pub fn noun(self) -> &'static str {
        match self {
            Category::Release => "release",
            Category::Operator => "operator",
            Category::Additional => "additional",
            Category::Helm => "helm",
        }
    }

    /// The IDMS/ITMS object an image's mirror is listed in (notes §4.1):
    /// additional and helm images are oc-mirror's `generic`.
    pub fn mirror_set_group(self) -> &'static str {
        match self {
            Category::Release => "release",
            Category::Operator => "operator",
            Category::Additional | Category::Helm => "generic",
        }
    }
}

/// The exit status of a run in which images of `failed` categories failed:
/// their bits combined (0 when none failed).
pub fn exit_bits(failed: impl IntoIterator<Item = Category>) -> u8 {
    failed
        .into_iter()
        .fold(0, |bits, category| bits | category.exit_bit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_category_has_its_own_bit_and_bits_combine() {
        let bits: Vec<u8> = Category::ALL
            .iter()
            .map(|category| category.exit_bit())
            .collect();
        assert_eq!(bits, [2, 4, 8, 16]);
        assert_eq!(exit_bits([]), 0);
        assert_eq!(exit_bits([Category::Additional, Category::Additional]), 8);
        assert_eq!(exit_bits([Category::Operator, Category::Additional]), 12);
        assert_eq!(exit_bits(Category::ALL), 30);
    }

    #[test]
    fn additional_and_helm_images_share_the_generic_mirror_sets() {
        assert_eq!(Category::Additional.mirror_set_group(), "generic");
        assert_eq!(Category::Helm.mirror_set_group(), "generic");
        assert_eq!(Category::Release.mirror_set_group(), "release");
        assert_eq!(Category::Operator.mirror_set_group(), "operator");
    }
}
