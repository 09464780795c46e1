; Items Quarry chunks in JavaScript and JSX (captures as in rust.scm). Functions assigned
; to consts, class fields holding functions and object methods are functions; a default
; export without a name is named `default`.

(function_declaration name: (identifier) @name) @item.function
(generator_function_declaration name: (identifier) @name) @item.function
(lexical_declaration (variable_declarator name: (identifier) @name value: [(arrow_function) (function_expression)])) @item.function
(variable_declaration (variable_declarator name: (identifier) @name value: [(arrow_function) (function_expression)])) @item.function
(class_declaration name: (identifier) @name) @item.class
(method_definition name: (_) @name) @item.function
(field_definition property: (_) @name value: [(arrow_function) (function_expression)]) @item.function
(pair key: (_) @name value: [(arrow_function) (function_expression)]) @item.function
(export_statement "default" @name value: [(arrow_function) (function_expression) (class)]) @item.function
