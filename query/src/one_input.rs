//! What the operators with one input ([`crate::guard::GuardExec`], the recursive
//! query cache, [`crate::eager_probe::EagerProbeExec`],
//! [`crate::list_elements::FilterElementsExec`]) share.

use std::sync::Arc;

use datafusion::error::{DataFusionError, Result};
use datafusion::physical_plan::ExecutionPlan;

/// The one child given to `with_new_children` of the operator `name`, or an error
/// when there is not exactly one.
pub(crate) fn only_input(
    mut children: Vec<Arc<dyn ExecutionPlan>>,
    name: &str,
) -> Result<Arc<dyn ExecutionPlan>> {
    match (children.pop(), children.is_empty()) {
        (Some(input), true) => Ok(input),
        _ => Err(DataFusionError::Internal(format!(
            "{name} takes exactly one input"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::Schema;
    use datafusion::physical_plan::empty::EmptyExec;

    #[test]
    fn exactly_one_input_is_taken() {
        let empty =
            || Arc::new(EmptyExec::new(Arc::new(Schema::empty()))) as Arc<dyn ExecutionPlan>;
        let one = empty();
        let taken = only_input(vec![Arc::clone(&one)], "X").expect("one input");
        assert!(Arc::ptr_eq(&taken, &one));
        for children in [vec![], vec![empty(), empty()]] {
            let err = only_input(children, "X").expect_err("not one input");
            assert!(
                err.to_string().contains("X takes exactly one input"),
                "{err}"
            );
        }
    }
}
