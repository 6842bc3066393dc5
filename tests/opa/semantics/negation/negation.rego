# `not` over refs, helper rules, functions and equality: the cases where the operand
# stays inside the negation, so an undefined one makes the negation true (OPA).
# Compared rule by rule with OPA by tests/opa/semantics.py.
package semantics.negation

# A negated ref: true when the ref is undefined or false.
not_ref if not input.request.body.admin

not_ref_root if not input.agent

# A negated helper rule (the advice in policies/library/README.md).
is_admin if input.request.body.role == "admin"

not_helper if not is_admin

default limited := false

limited if input.request.body.n > 10

not_default_rule if not limited

# A negated function call whose argument is a local: defined unless the function is.
safe_method(m) if m in {"GET", "HEAD"}

not_function_of_local if {
	m := input.request.method
	not safe_method(m)
}

# Equality keeps its operands inside the negation: ==, = and equal().
not_eq if not input.request.method == "GET"

not_eq_swapped if not "GET" == input.request.method

not_unify if not input.request.method = "GET"

not_equal_function if not equal(input.request.method, "GET")

equal_function if equal(input.request.method, "POST")

not_eq_refs if not input.request.method == input.request.body.method

# Negation in iteration: comprehensions, every, partial sets.
non_get_methods := [m | some m in input.methods; not m == "GET"]

non_admin_roles contains r if {
	some r in input.roles
	not r == "admin"
}

every_not_admin if {
	every r in input.roles {
		not r == "admin"
	}
}

# `not` in a function body and an else chain.
kind(x) := "none" if {
	not x
} else := "some"

kind_of_flag := kind(input.request.body.admin)

# Several negations in one body.
two_negations if {
	not input.request.body.admin
	not is_admin
	input.request.method
}
