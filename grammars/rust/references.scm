; Names a Rust symbol calls or references.
(call_expression function: (identifier) @reference)
(call_expression function: (field_expression field: (field_identifier) @reference))
(call_expression function: (scoped_identifier name: (identifier) @reference))
(call_expression function: (generic_function function: (identifier) @reference))
(call_expression function: (generic_function function: (scoped_identifier name: (identifier) @reference)))
(call_expression function: (generic_function function: (field_expression field: (field_identifier) @reference)))
(macro_invocation macro: (identifier) @reference)
(type_identifier) @reference
