; Names a Java symbol calls or references.
(method_invocation name: (identifier) @reference)
(object_creation_expression type: (type_identifier) @reference)
(type_identifier) @reference
