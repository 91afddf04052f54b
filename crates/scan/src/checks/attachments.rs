//! attachments checks (to be filled in).

use super::View;
use crate::Finding;

pub(crate) fn check(_view: &View<'_>) -> Vec<Finding> {
    Vec::new()
}
