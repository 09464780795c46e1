; The code graph of Java (captures as in rust-graph.scm; the first pattern that captures a
; node wins, so the catch-alls come last).

; --- definitions
(method_declaration name: (identifier) @def.function)
(constructor_declaration name: (identifier) @def.function)
(class_declaration name: (identifier) @def.class)
(record_declaration name: (identifier) @def.class)
(enum_declaration name: (identifier) @def.type)
(interface_declaration name: (identifier) @def.trait)
(annotation_type_declaration name: (identifier) @def.trait)
(field_declaration declarator: (variable_declarator name: (identifier) @def.field))
(constant_declaration declarator: (variable_declarator name: (identifier) @def.constant))
(enum_constant name: (identifier) @def.variant)

; --- imports
(import_declaration) @import.scope
(package_declaration) @import.scope

; --- calls
(method_invocation object: (_) @qualifier name: (identifier) @ref.method)
(method_invocation name: (identifier) @ref.call)
(object_creation_expression type: (type_identifier) @ref.call)
(object_creation_expression type: (generic_type (type_identifier) @ref.call))
(method_reference (_) @qualifier . (identifier) @ref.method)
(marker_annotation name: (identifier) @ref.type)
(annotation name: (identifier) @ref.type)

; --- fields, types, names
(field_access object: (_) @qualifier field: (identifier) @ref.field)
(scoped_identifier scope: (_) @qualifier name: (identifier) @ref.path)
(scoped_type_identifier (_) @qualifier . (type_identifier) @ref.type)
(type_identifier) @ref.type
((identifier) @ref.name (#not-eq? @ref.name "this"))
