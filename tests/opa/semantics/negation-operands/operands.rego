# `not` over calls, operators, nested calls and refs with dynamic indexes: OPA binds
# these operands to locals before the negation, so an undefined operand makes the
# body fail (undefined) rather than the negation true. Compared rule by rule with
# OPA by tests/opa/semantics.py; see docs/opa-differences.md.
package semantics.operands

hosts := {"api.example.com": true, "db.example.com": false}

body_q := input.request.body.q

default_host := input.request.body.host

is_get(m) if m == "GET"

# Calls.
not_contains if not contains(input.request.body.q, "DROP")

not_startswith_two_refs if not startswith(input.request.path, input.request.body.prefix)

not_call_of_helper_rule if not contains(body_q, "DROP")

not_user_function if not is_get(input.request.method)

not_sprintf_array if not sprintf("%v", [input.request.body.q]) == "[\"x\"]"

not_count_object if not count({"k": input.request.body.q}) == 1

# Nested calls.
not_nested if not contains(lower(input.request.body.q), "drop")

not_nested_twice if not startswith(trim_space(lower(input.request.body.q)), "drop")

not_eq_of_call if not lower(input.request.method) == "get"

not_equal_of_call if not equal(lower(input.request.method), "get")

# Refs with dynamic indexes (the ref itself stays inside the negation).
not_dynamic_index if not hosts[input.request.host]

not_data_dynamic_index if not data.allowed[input.request.host]

not_index_of_index if not hosts[input.hosts[input.i]]

not_call_in_index if not hosts[lower(input.request.host)]

not_helper_rule_index if not hosts[default_host]

not_eq_dynamic_index if not hosts[input.request.host] == true

# Comparisons and arithmetic (calls in OPA; == is not: see negation/).
not_lt if not input.request.body.n < 5

not_ge if not input.request.body.n >= 5

not_neq if not input.request.body.n != 5

not_arith if not input.request.body.n + 1 > 5

not_lt_two_refs if not input.request.body.n < input.limit

# Membership.
not_in_set if not input.request.method in {"GET", "HEAD"}

not_in_ref if not input.request.method in input.allowed

not_in_array_with_ref if not "GET" in [input.request.method, "HEAD"]

not_key_value_in if not 0, input.request.method in input.allowed

# Inside iteration.
methods_not_containing_x := [m | some m in input.allowed; not contains(m, input.needle)]

every_not_contains if {
	every m in input.allowed {
		not contains(m, input.needle)
	}
}
