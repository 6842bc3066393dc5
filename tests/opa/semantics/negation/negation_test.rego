# The answers of OPA v1.20.2, which `airlock policy test` must reproduce (see
# tests/opa/semantics.py): what stays inside a negation is true when undefined.
package semantics.negation

test_negated_ref_is_true_when_undefined if {
	not_ref with input as {}
	not not_ref with input as {"request": {"body": {"admin": true}}}
}

test_negated_equality_is_true_when_undefined if {
	not_eq with input as {}
	not_unify with input as {}
	not_equal_function with input as {}
	not not_eq with input as {"request": {"method": "GET"}}
}

test_negated_helper_rule_is_true_when_undefined if {
	not_helper with input as {}
	not not_helper with input as {"request": {"body": {"role": "admin"}}}
}

test_equal_function if {
	equal_function with input as {"request": {"method": "POST"}}
	not equal_function with input as {"request": {"method": "GET"}}
}
