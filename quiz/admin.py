from django.contrib import admin

from quiz.models import Game, GameRound


class GameRoundInline(admin.TabularInline):
    model = GameRound
    fields = ["position", "tile", "source", "answer", "confidence", "correct", "answered_at"]
    readonly_fields = fields
    can_delete = False
    extra = 0
    max_num = 0


@admin.register(Game)
class GameAdmin(admin.ModelAdmin):
    list_display = ["pk", "nickname", "n", "score", "created", "completed", "expires"]
    list_filter = ["completed", "n"]
    search_fields = ["nickname"]
    # Games are records of what players answered: they are read here, never edited.
    readonly_fields = ["token", "share_token", "nickname", "session_key", "seed", "n", "created", "expires",
                       "completed", "score"]
    inlines = [GameRoundInline]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
