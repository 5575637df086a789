; Symbol definitions for Rust. One @definition.<kind> (or @scope.<kind>) and one @name per pattern.
; Functions inside `impl` and `trait` blocks become methods (decided from the enclosing scope).
(function_item
  name: (identifier) @name) @definition.function

(function_signature_item
  name: (identifier) @name) @definition.function

(struct_item
  name: (type_identifier) @name) @definition.struct

(union_item
  name: (type_identifier) @name) @definition.struct

(enum_item
  name: (type_identifier) @name) @definition.enum

(trait_item
  name: (type_identifier) @name) @definition.trait

(mod_item
  name: (identifier) @name) @definition.module

; `impl Type` / `impl Trait for Type` names a scope (the type), not a symbol of its own.
(impl_item
  type: (_) @name) @scope.impl
