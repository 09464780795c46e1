; Items Quarry chunks in TypeScript and TSX (captures as in rust.scm). Functions assigned
; to consts, class fields holding functions and object methods are functions; a default
; export without a name is named `default`.

(function_declaration name: (identifier) @name) @item.function
(generator_function_declaration name: (identifier) @name) @item.function
(function_signature name: (identifier) @name) @item.function
(lexical_declaration (variable_declarator name: (identifier) @name value: [(arrow_function) (function_expression)])) @item.function
(class_declaration name: (type_identifier) @name) @item.class
(abstract_class_declaration name: (type_identifier) @name) @item.class
(interface_declaration name: (type_identifier) @name) @item.interface
(enum_declaration name: (identifier) @name) @item.enum
(internal_module name: (_) @name) @item.module
(method_definition name: (_) @name) @item.function
(abstract_method_signature name: (_) @name) @item.function
(public_field_definition name: (_) @name value: [(arrow_function) (function_expression)]) @item.function
(pair key: (_) @name value: [(arrow_function) (function_expression)]) @item.function
(export_statement "default" @name value: [(arrow_function) (function_expression) (class)]) @item.function
