"""Admin: create a study (the same service as `study_create`), read raters, ratings and their history."""

from __future__ import annotations

from django import forms
from django.contrib import admin

from generation.models import Tile
from studies import services
from studies.models import Rater, Rating, RatingRevision, Study, StudyTile


class StudyCreateForm(forms.ModelForm):
    tissues = forms.CharField(help_text="comma-separated, e.g. Lung, Brain - Cortex")
    sources = forms.MultipleChoiceField(choices=Tile.Source.choices, initial=list(services.STUDY_SOURCES),
                                        widget=forms.CheckboxSelectMultiple)
    seed = forms.IntegerField(required=False, help_text="empty: a random seed")

    class Meta:
        model = Study
        fields = ["name", "tissues", "sources", "per_cell", "selection", "candidates", "anchors", "block_size",
                  "min_raters", "repeats", "seed", "cover_text", "debrief"]

    def _post_clean(self):
        # The service validates and creates the study in one transaction; doing it here lets a refusal
        # (too few tiles in a cell, say) show on the form instead of failing in save_model.
        if self.errors:
            return
        data = self.cleaned_data
        try:
            self.instance = services.study_create(
                name=data["name"], tissues=[t.strip() for t in data["tissues"].split(",") if t.strip()],
                sources=data["sources"], per_cell=data["per_cell"], selection=data["selection"],
                candidates=data["candidates"], anchors=data["anchors"], block_size=data["block_size"],
                min_raters=data["min_raters"], repeats=data["repeats"], seed=data["seed"],
                cover_text=data["cover_text"], debrief=data["debrief"], created_by=self.request_user,
            )
        except services.StudyError as refusal:
            self.add_error(None, str(refusal))


class StudyTileInline(admin.TabularInline):
    model = StudyTile
    fields = ["code", "source", "tissue", "checkpoint", "included", "picked_by", "picked_at", "is_anchor", "block"]
    readonly_fields = fields
    can_delete = False
    extra = 0
    max_num = 0


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    list_display = ["name", "status", "selection", "per_cell", "anchors", "block_size", "repeats", "created"]
    list_filter = ["status", "selection"]
    inlines = [StudyTileInline]
    # After creation only what does not change the design can be edited.
    readonly_fields = ["tissues", "sources", "per_cell", "selection", "candidates", "anchors", "block_size",
                       "min_raters", "repeats", "seed", "tile_width", "tile_height", "created", "created_by",
                       "curated_at", "curated_by"]

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else []

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is not None:
            return super().get_form(request, obj, change=change, **kwargs)
        form = super().get_form(request, obj, change=change, form=StudyCreateForm, fields=StudyCreateForm.Meta.fields)
        form.request_user = request.user
        return form

    def save_model(self, request, obj, form, change):
        if change:
            obj.save(update_fields=["name", "status", "cover_text", "debrief", "stats_published"])
        # A new study was created by the service in the form's validation.


@admin.register(Rater)
class RaterAdmin(admin.ModelAdmin):
    list_display = ["code", "study", "label", "next_position", "n_items", "last_active", "finished_at", "revoked_at"]
    list_filter = ["study"]
    exclude = ["token"]
    readonly_fields = ["study", "code", "index", "n_items", "next_position", "created", "last_active", "finished_at",
                       "suspected_synthetic", "giveaway", "debriefed_at", "specialty", "years_in_practice",
                       "profile_done"]

    def has_add_permission(self, request):
        return False


class RatingRevisionInline(admin.TabularInline):
    model = RatingRevision
    fields = ["number", "tissue_answer", "quality", "artifacts", "comment", "seconds", "active_seconds", "created"]
    readonly_fields = fields
    can_delete = False
    extra = 0
    max_num = 0


@admin.register(Rating)
class RatingAdmin(admin.ModelAdmin):
    list_display = ["item", "tissue_answer", "quality", "artifacts", "revisions", "answered_at"]
    inlines = [RatingRevisionInline]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
