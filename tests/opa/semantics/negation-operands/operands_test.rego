# The answers of OPA v1.20.2, which `airlock policy test` must reproduce: in the RVM
# for tests without `with`, and in both the RVM and the interpreter for the rules a
# `with` statement reads. tests/opa/semantics.py runs these in both engines.
package semantics.operands

test_negated_call_with_undefined_operand_is_undefined if {
	not not_contains with input as {}
	not not_contains with input as {"request": {"body": {"q": "DROP table"}}}
	not_contains with input as {"request": {"body": {"q": "select 1"}}}
}

test_negated_nested_call_with_undefined_operand_is_undefined if {
	not not_nested with input as {"request": {}}
	not_nested with input as {"request": {"body": {"q": "select"}}}
}

test_negated_ref_with_undefined_index_is_undefined if {
	not not_dynamic_index with input as {}
	not_dynamic_index with input as {"request": {"host": "db.example.com"}}
	not_dynamic_index with input as {"request": {"host": "other.example"}}
	not not_dynamic_index with input as {"request": {"host": "api.example.com"}}
}

test_negated_comparison_with_undefined_operand_is_undefined if {
	not not_lt with input as {}
	not_lt with input as {"request": {"body": {"n": 7}}}
}

test_negated_membership_with_undefined_operand_is_undefined if {
	not not_in_set with input as {}
	not_in_set with input as {"request": {"method": "POST"}}
}
