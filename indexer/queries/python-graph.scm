; The code graph of Python: definitions and references (see src/graph/). Every identifier a
; pattern captures is one site; when several patterns capture the same node, the first
; pattern in this file wins, so specific patterns come before the catch-all at the end.
; Captures as in rust-graph.scm.

; --- definitions
(function_definition name: (identifier) @def.function)
(class_definition name: (identifier) @def.class)
(module (expression_statement (assignment left: (identifier) @def.constant)))
(module (expression_statement (assignment left: (pattern_list (identifier) @def.constant))))
(class_definition body: (block (expression_statement (assignment left: (identifier) @def.field))))

; --- imports
(import_statement) @import.scope
(import_from_statement) @import.scope
(aliased_import name: (dotted_name) @import.path alias: (identifier) @import.alias)

; --- calls and decorators
(call function: (identifier) @ref.call)
(call function: (attribute object: (_) @qualifier attribute: (identifier) @ref.method))
(decorator (identifier) @ref.call)
(decorator (attribute object: (_) @qualifier attribute: (identifier) @ref.method))

; --- attributes and names
(attribute object: (_) @qualifier attribute: (identifier) @ref.field)
(dotted_name (identifier) @qualifier . "." . (identifier) @ref.path)
; `self` and `cls` are receivers, not names anything defines
((identifier) @ref.name (#not-any-of? @ref.name "self" "cls"))
