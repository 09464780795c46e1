; The code graph of Ruby (captures as in rust-graph.scm; the first pattern that captures a
; node wins, so the catch-alls come last). Calls without parentheses are calls.

; --- definitions
(method name: (identifier) @def.function)
(singleton_method name: (identifier) @def.function)
(class name: (constant) @def.class)
(class name: (scope_resolution name: (constant) @def.class))
(module name: (constant) @def.module)
(module name: (scope_resolution name: (constant) @def.module))
(assignment left: (constant) @def.constant)
(alias name: (identifier) @def.function)

; --- imports
((call method: (identifier) @_require) @import.scope (#any-of? @_require "require" "require_relative" "load"))

; --- calls
(call receiver: (_) @qualifier method: (identifier) @ref.method)
(call method: (identifier) @ref.call)
(call receiver: (_) @qualifier method: (constant) @ref.method)

; --- scopes, constants, names
(scope_resolution scope: (_) @qualifier name: (constant) @ref.path)
(constant) @ref.type
(identifier) @ref.name
