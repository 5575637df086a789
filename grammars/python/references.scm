; Names a Python symbol calls or references.
(call function: (identifier) @reference)
(call function: (attribute attribute: (identifier) @reference))
(decorator (identifier) @reference)
(argument_list (identifier) @reference)
(class_definition superclasses: (argument_list (identifier) @reference))
(type (identifier) @reference)
