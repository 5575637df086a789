; Symbol definitions for Python. One @definition.<kind> (or @scope.<kind>) and one @name per pattern.
; Functions nested in a class become methods (decided from the enclosing scope, not here).
(function_definition
  name: (identifier) @name) @definition.function

(class_definition
  name: (identifier) @name) @definition.class
